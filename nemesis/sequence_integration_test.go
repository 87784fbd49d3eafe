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

// A user's sequence runs step by step, every step verified: a promotion
// while the old primary runs is refused (two writable primaries never
// coexist), the same promotion after the kill goes through and the clients
// follow it.
func TestIntegrationSequence(t *testing.T) {
	c := upLocal(t)
	ctx := context.Background()
	seq, err := ParseSequence("partition n3 n1; promote n2; kill primary; promote n2; heal; wait 200ms; rejoin n1", c.Nodes())
	require.NoError(t, err)
	rec := &memRecorder{start: time.Now()}
	topo := &fixedTopo{p: "n1"}
	n := New(c, Config{Interval: time.Second, Sequence: seq, WaitHealthy: 20 * time.Second}, rec, topo)
	require.Len(t, n.Plan(), 1)
	require.NoError(t, n.strike(ctx, n.Plan()[0]))
	var promotes []results.Op
	for _, op := range rec.ops {
		if op.F == "promote" && op.Type != results.Invoke {
			promotes = append(promotes, op)
		}
	}
	require.Len(t, promotes, 2)
	assert.Equal(t, results.Info, promotes[0].Type, "refused while n1 runs")
	assert.Contains(t, promotes[0].Error, "may still take writes")
	assert.Equal(t, results.OK, promotes[1].Type, promotes[1].Error)
	assert.Equal(t, "n2", promotes[1].Fault.Primary)
	assert.Contains(t, promotes[1].Fault.Verified, "the only primary")
	assert.Equal(t, "n2", topo.Primary(), "clients follow the promotion")
	p, err := cluster.FindPrimary(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, "n2", p)
	assert.True(t, cluster.Follows(ctx, c, "n2", "n1"), "n1 was rejoined")
	assert.Len(t, n.Errors(), 1, "only the refused promotion failed: %v", n.Errors())
	last := rec.ops[len(rec.ops)-1]
	assert.Equal(t, "end", last.F)
	assert.Equal(t, results.PhaseStop, last.Fault.Phase)
}
