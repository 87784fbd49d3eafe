package nemesis

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// downCluster is a cluster whose every node is down: the nemesis records
// steps against it without a query.
type downCluster struct{ cluster.Cluster }

func (downCluster) Backend() string                           { return "fake" }
func (downCluster) Nodes() []string                           { return nodes }
func (downCluster) Status(string) cluster.Role                { return cluster.Down }
func (downCluster) ConnString(string, bool) string            { return "host=127.0.0.1 port=1" }
func (downCluster) Spec() cluster.Spec                        { return cluster.Spec{} }
func (downCluster) Close(ctx context.Context) error           { return nil }
func (downCluster) Heal(ctx context.Context) error            { return nil }
func (downCluster) CollectLogs(context.Context, string) error { return nil }

// A planned step that the run's context (time limit plus overrun) ended
// before is recorded as a fault that did not happen, saying why, never
// dropped in silence: the faults check then makes the run unknown.
func TestRunRecordsUnstruckSteps(t *testing.T) {
	faults, err := Parse("kill-primary,partition", nodes)
	require.NoError(t, err)
	rec := &memRecorder{start: time.Now()}
	n := New(downCluster{}, Config{Faults: faults, Interval: 8 * time.Second, Seed: 6,
		TimeLimit: 25 * time.Second, Overrun: 30 * time.Second}, rec, &fixedTopo{p: "n1"})
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	require.NoError(t, n.Run(ctx, time.Now().Add(-time.Minute)))
	var unstruck []string
	for _, op := range rec.ops {
		if op.Type == results.Info {
			unstruck = append(unstruck, op.F)
			assert.Contains(t, op.Error, "not struck: the time limit (25s) and the overrun allowance (30s) ran out first")
			assert.Contains(t, op.Error, ErrNotVerified.Error())
		}
	}
	assert.Equal(t, []string{Partition, KillPrimary, Partition}, unstruck)
	assert.Len(t, n.Errors(), 3)

	// Interrupted (Ctrl-C) rather than out of time: it says so.
	rec = &memRecorder{start: time.Now()}
	n = New(downCluster{}, Config{Faults: faults, Interval: 8 * time.Second, Seed: 6, TimeLimit: 25 * time.Second}, rec, &fixedTopo{p: "n1"})
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	require.NoError(t, n.Run(cctx, time.Now()))
	require.Len(t, n.Errors(), 3)
	assert.Contains(t, n.Errors()[0].Error(), "planned at 2.1s, not struck: the run was interrupted")
}
