package harness

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

// Every form of synchronous_standby_names that PostgreSQL accepts (ANY n
// is the default; FIRST n, a plain list, * and empty here) brings a
// cluster up, runs, and fails over as the form deserves: auto failover
// promotes a standby the form guarantees to hold every acknowledged commit
// (with both standbys answering, every form has one), and with
// asynchronous replication it promotes none and says why. No acknowledged
// write is lost either way.
func TestIntegrationSyncForms(t *testing.T) {
	for _, tc := range []struct {
		form    string
		promote bool
	}{
		{"FIRST 1 (n2, n3)", true},
		{"n3, n2", true},
		{"*", true},
		{"", false},
	} {
		t.Run("'"+tc.form+"'", func(t *testing.T) {
			out, h := run(t, Test{Name: "syncform", Workloads: []string{"set"}, TimeLimit: 7 * time.Second, Concurrency: 4,
				ReadFrom: ReadPrimary, Faults: []nemesis.Fault{{Kind: nemesis.KillPrimary}}, Interval: 6 * time.Second,
				Spec: cluster.Spec{Settings: cluster.Settings{"synchronous_standby_names": tc.form}}})
			fo := nemesisOps(h, "failover")
			require.Len(t, fo, 1, "one kill, one failover decision")
			assert.Equal(t, results.OK, fo[0].Type, fo[0].Error)
			assert.False(t, fo[0].Fault.Forced)
			if tc.promote {
				assert.NotEmpty(t, fo[0].Fault.Primary, fo[0].Fault.Detail)
				assert.Contains(t, fo[0].Fault.Verified, "the only primary")
				require.NotEmpty(t, nemesisOps(h, "rejoin"))
			} else {
				assert.Empty(t, fo[0].Fault.Primary)
				assert.Contains(t, fo[0].Fault.Detail, "no promotion")
				assert.Contains(t, fo[0].Fault.Detail, "asynchronous")
				restart := nemesisOps(h, "restart-old-primary")
				require.Len(t, restart, 1)
				assert.Equal(t, results.OK, restart[0].Type, restart[0].Error)
			}
			assert.Equal(t, checker.Valid, out.Result.Verdict, strings.Join(out.Result.Notes, "\n"))
			assert.Equal(t, checker.Valid, out.Result.Find(checker.NameFaults).Verdict)
		})
	}
}
