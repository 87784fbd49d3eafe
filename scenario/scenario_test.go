package scenario

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
)

func TestGet(t *testing.T) {
	s, err := Get("sound-default")
	require.NoError(t, err)
	assert.Equal(t, checker.Valid, s.Expect)
	_, err = Get("nope")
	assert.ErrorContains(t, err, "unknown scenario")
	seen := map[string]bool{}
	for _, s := range All {
		assert.False(t, seen[s.Name], "unique names")
		seen[s.Name] = true
		assert.NotEmpty(t, s.Args)
		assert.NotNil(t, s.Found)
	}
}

func TestFirstAnomalyNS(t *testing.T) {
	r := &checker.Result{Checks: []checker.Check{
		{Name: checker.NameRPO, Verdict: checker.Invalid, RPO: &checker.RPOResult{
			Lost: []checker.OpRef{{CompleteNS: 900}, {CompleteNS: 700}}}},
		{Name: checker.NameStaleRead, Verdict: checker.Valid, StaleRead: &checker.StaleReadResult{
			Stale: []checker.StaleRead{{Read: checker.OpRef{InvokeNS: 5}}}}},
	}}
	assert.Equal(t, int64(700), FirstAnomalyNS(r), "only invalid checkers count")
	assert.Equal(t, int64(-1), FirstAnomalyNS(&checker.Result{}))
}
