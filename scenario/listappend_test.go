package scenario

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
)

// The list-append scenarios ask for the anomalies the list-append check
// adds to a run's.
func TestListAppendScenarios(t *testing.T) {
	res := func(v checker.Verdict, kind checker.Kind, documented bool) *checker.Result {
		r := &checker.Result{Model: checker.ModelGuide, Verdict: v,
			Models: []checker.ModelResult{{Model: checker.ModelGuide, Verdict: v}, {Model: checker.ModelPostgres, Verdict: v}, {Model: checker.ModelLinearizable, Verdict: v}}}
		if kind != "" {
			r.Anomalies = []checker.Anomaly{{Kind: kind, Documented: documented, Count: 2}}
		}
		return r
	}
	long, err := Get("long-fork-across-nodes")
	require.NoError(t, err)
	ok, why := long.Check(res(checker.Invalid, "G-nonadjacent", false))
	assert.True(t, ok, why)
	ok, _ = long.Check(res(checker.Valid, "", false))
	assert.False(t, ok)
	ser, err := Get("serializable-standby-reads")
	require.NoError(t, err)
	ok, why = ser.Check(res(checker.Invalid, "G2-item", true))
	assert.True(t, ok, why)
	ok, _ = ser.Check(res(checker.Invalid, "G2-item", false))
	assert.False(t, ok, "a G2-item no standby took part in is a finding, not this scenario")
	sound, err := Get("serializable-primary")
	require.NoError(t, err)
	ok, why = sound.Check(res(checker.Valid, "", false))
	assert.True(t, ok, why)
	ok, _ = sound.Check(res(checker.Invalid, "G2-item", false))
	assert.False(t, ok)
}
