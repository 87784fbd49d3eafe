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
		assert.NotEmpty(t, s.Models, "%s states a verdict per model", s.Name)
		assert.NotEmpty(t, s.Finds())
		if s.Expect == checker.Invalid {
			assert.NotEmpty(t, s.Must, "%s must name what makes it invalid", s.Name)
		}
	}
}

func result(model checker.Model, guide, postgres checker.Verdict, anomalies ...checker.Anomaly) *checker.Result {
	r := &checker.Result{Model: model, Anomalies: anomalies, Models: []checker.ModelResult{
		{Model: checker.ModelGuide, Verdict: guide}, {Model: checker.ModelPostgres, Verdict: postgres}}}
	for _, a := range anomalies {
		r.Models[0].RuledOutBy = append(r.Models[0].RuledOutBy, checker.Ruling{Kind: a.Kind, Count: a.Count, Documented: a.Documented})
	}
	r.Verdict = r.ModelResult(model).Verdict
	return r
}

// Check asserts the overall verdict, each model's, the anomalies that must
// and must not show, and what alone may rule a model out.
func TestCheck(t *testing.T) {
	s, err := Get("default-test")
	require.NoError(t, err)
	stale := checker.Anomaly{Kind: checker.KindStaleRead, Documented: true, Count: 90}
	ok, why := s.Check(result(checker.ModelPostgres, checker.Invalid, checker.Valid, stale))
	assert.True(t, ok, why)

	ok, why = s.Check(result(checker.ModelPostgres, checker.Invalid, checker.Valid))
	assert.False(t, ok)
	assert.Contains(t, why, "no stale-read")

	lost := checker.Anomaly{Kind: checker.KindLostWrite, Count: 1}
	ok, why = s.Check(result(checker.ModelPostgres, checker.Invalid, checker.Invalid, stale, lost))
	assert.False(t, ok)
	assert.Contains(t, why, "postgres: invalid, want valid")
	assert.Contains(t, why, "also ruled out by 1 lost-write")

	sound, _ := Get("sound-default")
	ok, why = sound.Check(result(checker.ModelGuide, checker.Invalid, checker.Invalid, lost))
	assert.False(t, ok)
	assert.Contains(t, why, "unexpected lost-write")
}

func TestFirstAnomalyNS(t *testing.T) {
	r := result(checker.ModelGuide, checker.Invalid, checker.Valid,
		checker.Anomaly{Kind: checker.KindStaleRead, Documented: true, Count: 2, Examples: []checker.Example{
			{Ops: []checker.OpRef{{InvokeNS: 900}}}, {Ops: []checker.OpRef{{InvokeNS: 700}}}}})
	r.Anomalies = append(r.Anomalies, checker.Anomaly{Kind: checker.KindNewThenOld, Documented: true, Count: 1,
		Examples: []checker.Example{{Ops: []checker.OpRef{{InvokeNS: 5}}}}})
	assert.Equal(t, int64(700), FirstAnomalyNS(r), "only anomalies that rule out the run's model count")
	assert.Equal(t, int64(-1), FirstAnomalyNS(&checker.Result{}))
}
