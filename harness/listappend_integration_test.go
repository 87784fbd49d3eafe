package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// The list-append workload through the harness on a real cluster:
// transactions on the primary, read-only ones on the standbys (at
// repeatable read there, recorded in test.json), final reads on every
// node, judged by the list-append check for the run's isolation level.
// Read-only transactions read every key in use (--read-all-keys).
func TestIntegrationListAppend(t *testing.T) {
	out, h := run(t, Test{Name: "append", Workloads: []string{results.WorkloadAppend}, TimeLimit: 8 * time.Second,
		Concurrency: 6, ReadFrom: ReadStandbys, Options: workload.Options{Isolation: workload.Serializable, Keys: 4, ReadAllKeys: true}})
	c := out.Result.Find(checker.NameListAppend)
	require.NotNil(t, c)
	r := c.ListAppend
	require.NotNil(t, r)
	t.Logf("%s", c.Summary)
	assert.NotEqual(t, checker.Unknown, c.Verdict, c.Error)
	assert.Equal(t, "serializable", r.Model)
	assert.Greater(t, r.OK, 100)
	assert.Contains(t, r.Satisfies, "read-committed", "standby snapshots are committed states")
	assert.Equal(t, "n1", r.FinalNode)
	served := map[string]int{}
	finals := map[string]bool{}
	for _, op := range h.Ops {
		if op.F == results.FTxn && op.Type == results.OK && !hasAppend(op.Txn) {
			served[op.Node]++
			assert.Len(t, op.Txn, 4, "--read-all-keys: a read of each key in use")
		}
		if op.F == results.FFinal && op.Workload == results.WorkloadAppend && op.Type == results.OK {
			finals[op.Node] = true
			assert.NotEmpty(t, op.Txn, "a final read has every key")
		}
	}
	assert.Greater(t, served["n2"]+served["n3"], 50, "read-only transactions on the standbys")
	assert.Zero(t, served["n1"], "--read-from standbys")
	assert.Len(t, finals, 3, "final reads on every node")
	info, err := results.ReadTestInfo(out.Run.TestJSON())
	require.NoError(t, err)
	assert.Equal(t, results.Serializable, info.Isolation)
	assert.True(t, strings.HasPrefix(info.Extra["standby_isolation"], "repeatable-read"), info.Extra["standby_isolation"])
	assert.Equal(t, "true", info.Extra["read_all_keys"])
}

// Through a kill of the primary and the failover: no acknowledged append
// is lost (ANY 2), the info transactions of the kill are handled as Elle
// handles them, and the history is at least read committed.
func TestIntegrationListAppendKillPrimary(t *testing.T) {
	out, _ := run(t, Test{Name: "append-kill", Workloads: []string{results.WorkloadAppend}, TimeLimit: 10 * time.Second,
		Concurrency: 6, ReadFrom: ReadPrimary, Options: workload.Options{Isolation: workload.RepeatableRead, Keys: 4},
		Faults: []nemesis.Fault{{Kind: nemesis.KillPrimary}}, Interval: 6 * time.Second})
	c := out.Result.Find(checker.NameListAppend)
	require.NotNil(t, c)
	r := c.ListAppend
	require.NotNil(t, r)
	t.Logf("%s", c.Summary)
	assert.Equal(t, "snapshot-isolation", r.Model)
	assert.NotEqual(t, "", r.FinalNode, "lost appends judged")
	for _, a := range r.Anomalies {
		assert.NotEqual(t, elle.LostAppend, a.Kind, "an acknowledged append was lost: %v", a.Cases)
	}
	assert.Contains(t, r.Satisfies, "read-committed")
	assert.NotEqual(t, checker.Unknown, c.Verdict, c.Error)
}

func hasAppend(txn []results.Mop) bool {
	for _, m := range txn {
		if !m.IsRead() {
			return true
		}
	}
	return false
}
