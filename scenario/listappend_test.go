package scenario

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
)

func TestListAppendFound(t *testing.T) {
	fork := &elle.Result{RulesOut: []elle.RuledOut{{Model: "snapshot-isolation", By: []elle.KindCount{{Kind: elle.GNonadjacent, Count: 2}}}},
		Anomalies: []elle.Anomaly{{Kind: elle.GNonadjacent, Cases: []elle.Case{{Txns: []elle.TxnRef{{InvokeNS: 900}, {InvokeNS: 400}}}}}}}
	res := func(v checker.Verdict, r *elle.Result) *checker.Result {
		return &checker.Result{Verdict: v, Checks: []checker.Check{{Name: checker.NameListAppend, Verdict: v, ListAppend: r}}}
	}
	long, err := Get("long-fork-across-nodes")
	require.NoError(t, err)
	assert.True(t, long.Found(res(checker.Invalid, fork)))
	assert.False(t, long.Found(res(checker.Valid, &elle.Result{})))
	ser, err := Get("serializable-standby-reads")
	require.NoError(t, err)
	assert.False(t, ser.Found(res(checker.Invalid, fork)), "Found looks at the model it names")
	sound, err := Get("serializable-primary")
	require.NoError(t, err)
	assert.True(t, sound.Found(res(checker.Valid, &elle.Result{OK: 10})))
	assert.False(t, sound.Found(res(checker.Valid, &elle.Result{})), "no transaction: nothing shown")
	assert.Equal(t, int64(400), FirstAnomalyNS(res(checker.Invalid, fork)))
}
