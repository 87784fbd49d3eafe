package harness

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

// A manager that does not bring the cluster back in the settle step is the
// run's finding, not a harness error: the settle step fails with the
// manager's account, every node's final state is still read, and the
// verdict says the run could not be decided. The bound is cut to nothing
// so that the wait for Patroni's health runs out.
func TestIntegrationManagerNotSettled(t *testing.T) {
	needLocal(t)
	if err := local.ManagerPreflight(cluster.ManagerPatroni); err != nil {
		t.Skipf("patroni unavailable: %v", err)
	}
	defer func(b time.Duration) { ManagerSettleWait = b }(ManagerSettleWait)
	ManagerSettleWait = time.Millisecond
	be := Backend{Name: "local", SharesMachine: true, Up: func(ctx context.Context, spec cluster.Spec, dir string) (cluster.Cluster, error) {
		return local.UpManaged(ctx, local.Options{Dir: dir, Subnet: local.AutoSubnet, Spec: spec})
	}}
	tt := Test{Name: "unsettled", Workloads: []string{"set"}, TimeLimit: 3 * time.Second, Concurrency: 4, ReadFrom: ReadPrimary,
		Failover: nemesis.Policy{Mode: nemesis.FailoverExternal}, Spec: cluster.Spec{Manager: cluster.ManagerSpec{Name: cluster.ManagerPatroni}},
		Store: storeDir(t), Seed: 1}
	out, err := Run(context.Background(), tt, be)
	require.NoError(t, err)
	require.NoError(t, out.Err, "not a harness error")
	require.NotNil(t, out.Result)
	h, err := results.ReadFile(out.Run.History())
	require.NoError(t, err)
	settle := nemesisOps(h, "settle")
	require.Len(t, settle, 1)
	assert.Equal(t, results.Info, settle[0].Type)
	assert.Contains(t, settle[0].Error, cluster.ErrNotSettled.Error())
	finals := map[string]results.Type{}
	for _, op := range h.Ops {
		if op.F == results.FFinal && op.Type != results.Invoke {
			finals[op.Node] = op.Type
		}
	}
	assert.Equal(t, map[string]results.Type{"n1": results.OK, "n2": results.OK, "n3": results.OK}, finals, "every node's final state read")
	f := out.Result.Find(checker.NameFaults)
	assert.Equal(t, checker.Unknown, f.Verdict)
	assert.Contains(t, f.Error, "settle")
	assert.Equal(t, checker.Unknown, out.Result.Verdict)
	assertRecheckAgrees(t, out)
}
