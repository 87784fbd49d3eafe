package histgen

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
)

// Values from the generator are unique and every entry is in time order.
func TestRegisterShape(t *testing.T) {
	ops := Register(9, 5000, RegisterOptions{})
	seen := map[int64]bool{}
	var info int
	for i, op := range ops {
		require.Equal(t, int64(i), op.Index)
		if i > 0 {
			require.GreaterOrEqual(t, op.Time, ops[i-1].Time)
		}
		if op.Type == results.Invoke && op.F != results.FRead {
			require.False(t, seen[*op.Value], "value %d twice", *op.Value)
			seen[*op.Value] = true
		}
		if op.Type == results.Info {
			info++
		}
	}
	assert.Len(t, ops, 10000)
	assert.InDelta(t, 500, info, 150)
}
