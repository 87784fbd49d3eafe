package checker

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
)

func states(primaries ...string) []results.NodeState {
	var out []results.NodeState
	for _, n := range []string{"n1", "n2", "n3"} {
		role := "standby"
		for _, p := range primaries {
			if p == n {
				role = "primary"
			}
		}
		out = append(out, results.NodeState{Node: n, Role: role})
	}
	return out
}

// Two primaries after a step of an external failover (an HA manager left an
// isolated old primary up) are listed and explained, not a failed fault;
// the same moment after a step that failed with it stays unknown.
func TestFaultsTwoPrimaries(t *testing.T) {
	cut := results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseStart, Targets: []string{"n2"}, Verified: "links cut", Nodes: states("n2")}
	heal := results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseStop, Targets: []string{"n2"}, Verified: "links restored", Nodes: states("n2", "n3")}
	health := results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseInfo, Primary: "n3", Verified: "n3 the only primary", Nodes: states("n3")}
	build := func(healType results.Type) *hb {
		b := new(hb).
			reg(10, 0, results.Invoke, results.FWrite, val(1)).
			reg(20, 0, results.OK, results.FWrite, val(1), on("n2")).
			step(1_000_000_000, 1_100_000_000, "partition", cut)
		return b.stepAs(2_000_000_000, 2_100_000_000, "heal", heal, healType, "more than one primary: [n2 n3]").
			step(3_000_000_000, 3_600_000_000, "health", health).
			reg(4_000_000_000, 1, results.Invoke, results.FRead).
			reg(4_000_000_010, 1, results.OK, results.FRead, val(1), on("n3")).
			final(5_000_000_000, results.WorkloadRegister, "n3", val(1))
	}

	r := CheckHistory(context.Background(), &results.History{Ops: build(results.OK).ops}, Options{})
	c := r.Find(NameFaults)
	require.NotNil(t, c)
	assert.Equal(t, Valid, c.Verdict, c.Summary)
	require.Len(t, c.Faults.TwoPrimaries, 1)
	p := c.Faults.TwoPrimaries[0]
	assert.Equal(t, []string{"n2", "n3"}, p.Primaries)
	assert.Equal(t, "heal", p.Step)
	assert.Equal(t, int64(3_600_000_000), p.UntilNS, "the health step saw one primary")
	assert.Contains(t, p.String(), "one primary at the next step that looked, 1.5 s later")
	assert.Contains(t, c.Summary, "1 saw two primaries")
	var note string
	for _, n := range r.Notes {
		if strings.Contains(n, "More than one node was out of recovery") {
			note = n
		}
	}
	assert.Contains(t, note, "after fault 1 step heal: n2 and n3")
	assert.Equal(t, Valid, r.Verdict, "the checks found no harm")

	// strongcheck's own failover: the nemesis failed the step.
	r = CheckHistory(context.Background(), &results.History{Ops: build(results.Info).ops}, Options{})
	c = r.Find(NameFaults)
	assert.Equal(t, Unknown, c.Verdict)
	assert.Contains(t, c.Error, "more than one primary")
	assert.Len(t, c.Faults.TwoPrimaries, 1, "listed as well")
	assert.Equal(t, Unknown, r.Verdict)
	for _, n := range r.Notes {
		assert.NotContains(t, n, "More than one node was out of recovery", "the failed step's note says it")
	}
}

// A settle step that failed (an HA manager that did not bring every node
// back) has its own note: the faults took effect, the cluster did not come
// back whole. The generic "not every fault took effect" note is only for
// other failed steps.
func TestFaultsFailedSettleNote(t *testing.T) {
	cut := results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseStart, Targets: []string{"n2"}, Verified: "links cut", Nodes: states("n1")}
	heal := results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseStop, Targets: []string{"n2"}, Verified: "links restored", Nodes: states("n1")}
	settle := results.Fault{Kind: "settle", Phase: results.PhaseInfo, Nodes: states("n1")}
	build := func(healType results.Type) *results.History {
		b := new(hb).
			reg(10, 0, results.Invoke, results.FWrite, val(1)).
			reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
			step(1_000_000_000, 1_100_000_000, "partition", cut)
		b.stepAs(2_000_000_000, 2_100_000_000, "heal", heal, healType, "links still cut").
			stepAs(3_000_000_000, 4_000_000_000, "settle", settle, results.Info, "settle: patroni: the manager did not bring every node back: n2 not streaming")
		return &results.History{Ops: b.final(5_000_000_000, results.WorkloadRegister, "n1", val(1)).ops}
	}
	has := func(notes []string, s string) bool {
		for _, n := range notes {
			if strings.Contains(n, s) {
				return true
			}
		}
		return false
	}

	r := CheckHistory(context.Background(), build(results.OK), Options{})
	assert.Equal(t, Unknown, r.Find(NameFaults).Verdict, "no settled cluster: unknown, not valid")
	assert.True(t, has(r.Notes, "did not come back whole after the last fault (settle: patroni: the manager did not bring every node back: n2 not streaming)"), "%q", r.Notes)
	assert.False(t, has(r.Notes, "Not every fault took effect"), "every fault did")

	r = CheckHistory(context.Background(), build(results.Info), Options{})
	assert.True(t, has(r.Notes, "did not come back whole"))
	assert.True(t, has(r.Notes, "Not every fault took effect"), "the failed heal is a fault that did not take effect")
}
