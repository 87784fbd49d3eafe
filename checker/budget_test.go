package checker

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
)

// A budget the heap already exceeds leaves every key undecided: unknown,
// never valid; a generous one changes nothing.
func TestMemoryBudgetGivesUnknown(t *testing.T) {
	ops := histgen.Register(7, 2000, histgen.RegisterOptions{})
	h := &results.History{Ops: ops}
	tight := CheckHistory(context.Background(), h, Options{MemoryBudget: 1})
	lin := tight.Find(NameLinearizable)
	require.NotNil(t, lin)
	assert.Equal(t, Unknown, lin.Verdict)
	assert.Contains(t, lin.Error, "memory budget")
	assert.NotEqual(t, Valid, tight.Verdict)
	roomy := CheckHistory(context.Background(), h, Options{MemoryBudget: 64 << 30})
	assert.Equal(t, Valid, roomy.Find(NameLinearizable).Verdict)
}
