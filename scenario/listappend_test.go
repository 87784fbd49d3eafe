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

	// PostgreSQL's SSI bug: tolerated by serializable-primary when it
	// alone rules the models out, and by no other scenario.
	ruledOutBy := func(kinds ...checker.Kind) *checker.Result {
		r := res(checker.Invalid, kinds[0], false)
		for i := range r.Models {
			for _, k := range kinds {
				r.Models[i].RuledOutBy = append(r.Models[i].RuledOutBy, checker.Ruling{Kind: k, Count: 1})
			}
		}
		return r
	}
	ok, why = sound.Check(ruledOutBy(checker.KindReadOnlyAnomaly))
	assert.True(t, ok, why)
	assert.Contains(t, why, "tolerates")
	ok, why = sound.Check(ruledOutBy(checker.KindReadOnlyAnomaly, "G1c"))
	assert.False(t, ok, "another anomaly beside it: %s", why)
	ok, _ = long.Check(ruledOutBy(checker.KindReadOnlyAnomaly))
	assert.False(t, ok, "long-fork-across-nodes tolerates nothing")
	r := ruledOutBy(checker.KindReadOnlyAnomaly)
	r.Models[1].Verdict, r.Models[1].RuledOutBy = checker.Unknown, nil
	ok, _ = sound.Check(r)
	assert.False(t, ok, "an unknown model is not tolerated")
}
