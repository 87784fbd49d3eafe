package checker

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
)

// topology is the harness's record of the roles at the start: n1 primary.
func (b *hb) topology(t int64) *hb {
	f := results.Fault{Kind: results.FTopology, Phase: results.PhaseInfo, Primary: "n1", Nodes: []results.NodeState{
		{Node: "n1", Role: "primary"}, {Node: "n2", Role: "standby"}, {Node: "n3", Role: "standby"}}}
	return b.add(t, results.HarnessProcess, results.OK, results.WorkloadNemesis, results.FTopology, "", fault(f))
}

// write and read are one client operation each: invoke at t, completion
// at t+d.
func (b *hb) write(t, d int64, p results.Process, typ results.Type, v int64, mods ...mod) *hb {
	b.reg(t, p, results.Invoke, results.FWrite, val(v))
	return b.reg(t+d, p, typ, results.FWrite, append([]mod{on("n1")}, mods...)...)
}

func (b *hb) read(t, d int64, p results.Process, node string, v int64) *hb {
	b.reg(t, p, results.Invoke, results.FRead)
	return b.reg(t+d, p, results.OK, results.FRead, val(v), on(node))
}

// failover kills n1 at t, promotes n2 and closes the window by rejoining
// n1; forced marks a promotion the sync list did not guarantee.
func (b *hb) failover(t int64, forced bool) *hb {
	p := failoverN2
	p.Forced = forced
	p.Nodes = []results.NodeState{{Node: "n1", Role: "down"}, {Node: "n2", Role: "primary"}, {Node: "n3", Role: "standby"}}
	k := killN1
	k.Nodes = []results.NodeState{{Node: "n1", Role: "down"}, {Node: "n2", Role: "standby"}, {Node: "n3", Role: "standby"}}
	r := rejoinN1
	r.Nodes = []results.NodeState{{Node: "n1", Role: "standby"}, {Node: "n2", Role: "primary"}, {Node: "n3", Role: "standby"}}
	return b.nemesis(t, t+1, k).nemesis(t+2, t+10, p).step(t+20, t+30, "rejoin", r)
}

type anomalyCase struct {
	name     string
	settings map[string]string
	hist     *hb
	// want are the anomalies that must be found (kind and whether
	// documented), none are the kinds that must not.
	want   map[Kind]bool
	none   []Kind
	models map[Model]Verdict
}

// TestAnomalies is every named anomaly on a hand-made history, each with a
// clean twin that differs only where the anomaly lies.
func TestAnomalies(t *testing.T) {
	sync2 := map[string]string{"synchronous_commit": "on", "synchronous_standby_names": "ANY 2 (n2, n3)"}
	apply2 := map[string]string{"synchronous_commit": "remote_apply", "synchronous_standby_names": "ANY 2 (n2, n3)"}
	async := map[string]string{"synchronous_commit": "on", "synchronous_standby_names": ""}
	fin := func(b *hb, v int64) *hb {
		return b.final(1000, results.WorkloadRegister, "n2", val(v)).final(1010, results.WorkloadRegister, "n3", val(v))
	}
	fin1 := func(b *hb, v int64) *hb {
		return b.final(1000, results.WorkloadRegister, "n1", val(v)).final(1010, results.WorkloadRegister, "n2", val(v))
	}
	cases := []anomalyCase{
		{name: "stale read on a standby, on: documented", settings: sync2,
			hist:   fin1(new(hb).topology(0).write(10, 10, 0, results.OK, 1).read(30, 10, 1, "n2", 0), 1),
			want:   map[Kind]bool{KindStaleRead: true},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Valid, ModelLinearizable: Invalid}},
		{name: "stale read on a standby, remote_apply with ANY 2: a finding", settings: apply2,
			hist:   fin1(new(hb).topology(0).write(10, 10, 0, results.OK, 1).read(30, 10, 1, "n2", 0), 1),
			want:   map[Kind]bool{KindStaleRead: false},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Invalid}},
		{name: "twin: fresh read on the standby", settings: apply2,
			hist:   fin1(new(hb).topology(0).write(10, 10, 0, results.OK, 1).read(30, 10, 1, "n2", 1), 1),
			none:   []Kind{KindStaleRead},
			models: map[Model]Verdict{ModelGuide: Valid, ModelPostgres: Valid, ModelLinearizable: Valid}},
		{name: "stale read on the primary: a finding", settings: sync2,
			hist: fin1(new(hb).topology(0).write(10, 10, 0, results.OK, 1).write(30, 10, 0, results.OK, 2).
				read(50, 10, 1, "n1", 1), 2),
			want:   map[Kind]bool{KindStaleRead: false},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Invalid, ModelLinearizable: Invalid}},
		{name: "new-then-old across nodes: documented, allowed by the guide", settings: sync2,
			// n2 shows 1 before it is acknowledged, n3 does not yet.
			hist: fin1(new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).
				read(20, 5, 1, "n2", 1).read(30, 5, 2, "n3", 0).
				reg(40, 0, results.OK, results.FWrite, val(1), on("n1")), 1),
			want:   map[Kind]bool{KindNewThenOld: true},
			none:   []Kind{KindStaleRead, KindNonMonotonic},
			models: map[Model]Verdict{ModelGuide: Valid, ModelPostgres: Valid, ModelLinearizable: Invalid}},
		{name: "twin: both reads see the new value", settings: sync2,
			hist: fin1(new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).
				read(20, 5, 1, "n2", 1).read(30, 5, 2, "n3", 1).
				reg(40, 0, results.OK, results.FWrite, val(1), on("n1")), 1),
			none:   []Kind{KindNewThenOld},
			models: map[Model]Verdict{ModelLinearizable: Valid}},
		{name: "non-monotonic read on one node: a finding", settings: sync2,
			hist: fin1(new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).
				read(20, 5, 1, "n2", 1).read(30, 5, 2, "n2", 0).
				reg(40, 0, results.OK, results.FWrite, val(1), on("n1")), 1),
			want:   map[Kind]bool{KindNonMonotonic: false},
			none:   []Kind{KindNewThenOld},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Invalid}},
		{name: "twin: a standby shows a commit before the primary does, and the primary's reads stay in order", settings: sync2,
			hist: fin1(new(hb).topology(0).write(10, 10, 0, results.OK, 1).
				reg(15, 1, results.Invoke, results.FWrite, val(2)).
				read(25, 2, 2, "n2", 2).read(30, 1, 3, "n1", 1).
				reg(60, 1, results.OK, results.FWrite, val(2), on("n1")).
				read(70, 1, 3, "n1", 2), 2),
			// The writes overlap: no order of the values is proven, only
			// that no single order fits every node's reads.
			want:   map[Kind]bool{KindNonLinearizableAll: true},
			none:   []Kind{KindNonMonotonic, KindStaleRead, KindVanished, KindNewThenOld},
			models: map[Model]Verdict{ModelGuide: Valid, ModelPostgres: Valid}},
		{name: "twin: a failover between the two reads makes it new-then-old", settings: sync2,
			hist: func() *hb {
				b := new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).read(20, 5, 1, "n3", 1)
				b.failover(40, false).read(80, 5, 2, "n3", 0).reg(90, 0, results.Info, results.FWrite)
				return b.final(1000, results.WorkloadRegister, "n2", val(0))
			}(),
			none: []Kind{KindNonMonotonic},
			want: map[Kind]bool{KindNewThenOld: true, KindVanished: false}},
		{name: "vanished read after a safe failover: a finding", settings: sync2,
			hist: func() *hb {
				b := new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).read(20, 5, 1, "n3", 1)
				b.failover(40, false).reg(90, 0, results.Info, results.FWrite)
				return fin(b, 0)
			}(),
			want:   map[Kind]bool{KindVanished: false},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Invalid}},
		{name: "vanished read after a forced promotion: documented", settings: sync2,
			hist: func() *hb {
				b := new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).read(20, 5, 1, "n3", 1)
				b.failover(40, true).reg(90, 0, results.Info, results.FWrite)
				return fin(b, 0)
			}(),
			want:   map[Kind]bool{KindVanished: true},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Valid}},
		{name: "twin: the value survived", settings: sync2,
			hist: func() *hb {
				b := new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).read(20, 5, 1, "n3", 1)
				b.failover(40, false).reg(90, 0, results.Info, results.FWrite)
				return fin(b, 1)
			}(),
			none:   []Kind{KindVanished, KindLostWrite},
			models: map[Model]Verdict{ModelGuide: Valid, ModelPostgres: Valid}},
		{name: "vanished: the new primary reads older than a read before the failover, the key overwritten since", settings: sync2,
			hist: func() *hb {
				b := new(hb).topology(0).reg(10, 0, results.Invoke, results.FWrite, val(1)).read(20, 5, 1, "n1", 1)
				b.reg(30, 0, results.Info, results.FWrite, func(o *results.Op) { o.Error = "timeout: context deadline exceeded" })
				b.failover(40, true).read(80, 5, 2, "n2", 0).write(90, 5, 3, results.OK, 2, on("n2"))
				return fin(b, 2)
			}(),
			want:   map[Kind]bool{KindVanished: true},
			none:   []Kind{KindNewThenOld, KindLostWrite},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Valid}},
		// Found by the zoo (default-test, 1 run in 20): a standby replays
		// a commit before the primary shows it; a later read on the
		// primary returns the older value while a rejoin of another node
		// runs. No primary changed between the reads: nothing vanished.
		{name: "new-then-old on the primary across a rejoin, no promotion between: documented, not vanished", settings: sync2,
			hist: func() *hb {
				b := new(hb).topology(0).failover(90, false)
				b.write(102, 98, 3, results.OK, 1, on("n2")).read(105, 6, 1, "n3", 1).read(113, 5, 2, "n2", 0)
				return fin(b, 1)
			}(),
			want:   map[Kind]bool{KindNewThenOld: true},
			none:   []Kind{KindVanished, KindStaleRead, KindLostWrite},
			models: map[Model]Verdict{ModelGuide: Valid, ModelPostgres: Valid, ModelLinearizable: Invalid}},
		{name: "lost write with ANY 2 and a safe failover: a finding", settings: sync2,
			hist:   fin(new(hb).topology(0).write(10, 10, 0, results.OK, 1).failover(40, false), 0),
			want:   map[Kind]bool{KindLostWrite: false},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Invalid}},
		{name: "lost write with asynchronous replication: documented", settings: async,
			hist:   fin(new(hb).topology(0).write(10, 10, 0, results.OK, 1).failover(40, true), 0),
			want:   map[Kind]bool{KindLostWrite: true},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Valid}},
		{name: "lost write acknowledged with the sync-wait warning: documented", settings: sync2,
			hist:   fin(new(hb).topology(0).write(10, 10, 0, results.OK, 1, warn(syncWarn)).failover(40, false), 0),
			want:   map[Kind]bool{KindLostWarned: true},
			none:   []Kind{KindLostWrite},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Valid}},
		{name: "twin: the write survived", settings: sync2,
			hist:   fin(new(hb).topology(0).write(10, 10, 0, results.OK, 1).failover(40, false), 1),
			none:   []Kind{KindLostWrite, KindLostWarned},
			models: map[Model]Verdict{ModelGuide: Valid, ModelPostgres: Valid, ModelLinearizable: Valid}},
		{name: "failed write whose value was read: a finding", settings: sync2,
			hist:   fin1(new(hb).topology(0).write(10, 10, 0, results.Fail, 1).read(30, 10, 1, "n1", 1), 1),
			want:   map[Kind]bool{KindFailedPresent: false},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Invalid}},
		{name: "twin: the failed write left no trace", settings: sync2,
			hist:   fin1(new(hb).topology(0).write(10, 10, 0, results.Fail, 1).read(30, 10, 1, "n1", 0), 0),
			none:   []Kind{KindFailedPresent},
			models: map[Model]Verdict{ModelGuide: Valid}},
		{name: "a read of a value no write produced", settings: sync2,
			hist:   fin1(new(hb).topology(0).read(30, 10, 1, "n1", 7), 0),
			want:   map[Kind]bool{KindUnwritten: false},
			models: map[Model]Verdict{ModelPostgres: Invalid}},
		{name: "a standby whose final state differs", settings: sync2,
			hist: new(hb).topology(0).write(10, 10, 0, results.OK, 1).
				final(1000, results.WorkloadRegister, "n1", val(1)).final(1010, results.WorkloadRegister, "n2", val(0)),
			want:   map[Kind]bool{KindDivergent: false},
			models: map[Model]Verdict{ModelPostgres: Invalid}},
		{name: "non-linearizable without a named anomaly", settings: sync2,
			// Two cas from 0 both succeed, one after the other.
			hist: fin1(new(hb).topology(0).
				reg(10, 0, results.Invoke, results.FCAS, exp(0), val(1)).reg(20, 0, results.OK, results.FCAS, on("n1")).
				reg(30, 1, results.Invoke, results.FCAS, exp(0), val(2)).reg(40, 1, results.OK, results.FCAS, on("n1")), 2),
			want:   map[Kind]bool{KindNonLinearizable: false},
			models: map[Model]Verdict{ModelGuide: Invalid, ModelPostgres: Invalid}},
		{name: "twin: the second cas expects the first's value", settings: sync2,
			hist: fin1(new(hb).topology(0).
				reg(10, 0, results.Invoke, results.FCAS, exp(0), val(1)).reg(20, 0, results.OK, results.FCAS, on("n1")).
				reg(30, 1, results.Invoke, results.FCAS, exp(1), val(2)).reg(40, 1, results.OK, results.FCAS, on("n1")), 2),
			none:   []Kind{KindNonLinearizable},
			models: map[Model]Verdict{ModelLinearizable: Valid}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckHistory(context.Background(), &results.History{Ops: tc.hist.ops}, Options{Settings: tc.settings})
			for k, doc := range tc.want {
				a := findAnomaly(r, k, doc)
				if assert.NotNil(t, a, "want %s (documented %v); got %+v", k, doc, kindsOf(r)) {
					assert.NotEmpty(t, a.Explanation)
					assert.NotEmpty(t, a.Why)
					assert.NotEmpty(t, a.Doc)
					require.NotEmpty(t, a.Examples)
					assert.NotEmpty(t, a.Examples[0].Text)
					assert.NotEmpty(t, a.Examples[0].Ops)
				}
			}
			for _, k := range tc.none {
				assert.Nil(t, findAnomaly(r, k, true), "unexpected documented %s", k)
				assert.Nil(t, findAnomaly(r, k, false), "unexpected %s", k)
			}
			for m, v := range tc.models {
				mr := r.ModelResult(m)
				require.NotNil(t, mr)
				assert.Equal(t, v, mr.Verdict, "%s: %s (anomalies %v)", m, mr.Summary, kindsOf(r))
			}
		})
	}
}

func kindsOf(r Result) []string {
	var out []string
	for _, a := range r.Anomalies {
		s := string(a.Kind)
		if a.Documented {
			s += " (documented)"
		}
		out = append(out, s)
	}
	return out
}

// A fault step that failed or could not be verified makes every model
// unknown; an anomaly still makes it invalid.
func TestFailedFaultIsNeverValid(t *testing.T) {
	failed := results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseStart, Targets: []string{"n2"}}
	build := func(stale bool, stepType results.Type) *hb {
		b := new(hb).topology(0).write(10, 10, 0, results.OK, 1)
		b.add(25, results.NemesisProcess, results.Invoke, results.WorkloadNemesis, "partition", "", fault(failed))
		b.add(26, results.NemesisProcess, stepType, results.WorkloadNemesis, "partition", "", fault(failed),
			func(o *results.Op) {
				if stepType != results.OK {
					o.Error = "fault did not take effect: n1→n2 still connects"
				}
			})
		b.nemesis(27, 28, healN2)
		v := int64(1)
		if stale {
			v = 0
		}
		return b.read(30, 10, 1, "n1", v).final(1000, results.WorkloadRegister, "n1", val(1))
	}
	r := CheckHistory(context.Background(), &results.History{Ops: build(false, results.Info).ops}, Options{})
	f := r.Find(NameFaults)
	require.NotNil(t, f)
	assert.Equal(t, Unknown, f.Verdict)
	require.Len(t, f.Faults.Failed, 1)
	assert.Contains(t, f.Faults.Failed[0].Error, "still connects")
	for _, m := range r.Models {
		assert.Equal(t, Unknown, m.Verdict, m.Model)
		assert.Contains(t, m.Unknown, "still connects")
	}
	assert.Equal(t, Unknown, r.Verdict)

	r = CheckHistory(context.Background(), &results.History{Ops: build(true, results.Info).ops}, Options{})
	assert.Equal(t, Invalid, r.Verdict, "a stale read on the primary is invalid whatever the faults did")

	r = CheckHistory(context.Background(), &results.History{Ops: build(false, results.OK).ops}, Options{})
	assert.Equal(t, Valid, r.Verdict, "the clean twin: %s", r.ModelsLine())
	assert.Equal(t, Valid, r.Find(NameFaults).Verdict)
}

// Options.Model picks the verdict; every model is judged regardless.
func TestModelChoosesVerdict(t *testing.T) {
	h := new(hb).topology(0).write(10, 10, 0, results.OK, 1).read(30, 10, 1, "n2", 0).
		final(1000, results.WorkloadRegister, "n1", val(1))
	for m, want := range map[Model]Verdict{"": Invalid, ModelGuide: Invalid, ModelPostgres: Valid, ModelLinearizable: Invalid} {
		r := CheckHistory(context.Background(), &results.History{Ops: h.ops}, Options{Model: m})
		assert.Equal(t, want, r.Verdict, "model %q", m)
		assert.Len(t, r.Models, 3)
	}
}

// The role timeline follows the nemesis: reads on n2 after its promotion
// are the primary's.
func TestRoleTimeline(t *testing.T) {
	b := new(hb).topology(0).failover(100, false)
	h := index(b.ops)
	rt := h.roleTimeline()
	assert.Equal(t, "n1", rt.initial)
	assert.Equal(t, rolePrimary, rt.roleAt("n1", 50))
	assert.Equal(t, roleStandby, rt.roleAt("n2", 50))
	assert.Equal(t, roleStandby, rt.roleAt("n1", 105), "n1 is down once the kill completed")
	assert.Equal(t, rolePrimary, rt.roleAt("n2", 200))
	assert.True(t, rt.primaryThroughout("n1", 10, 90))
	assert.False(t, rt.primaryThroughout("n1", 90, 101), "the kill disrupted it")
	assert.False(t, rt.primaryThroughout("n2", 105, 200), "n2 was promoted during the span")
	assert.True(t, rt.primaryThroughout("n2", 200, 300))
	assert.True(t, rt.movedBetween(100, 115))
	assert.False(t, rt.movedBetween(200, 300))
}

// The stale-read check counts register reads; the stale-read anomaly
// counts set reads too. Each says what it counts, and the numbers agree:
// the check's count is the anomaly's register share.
func TestStaleReadCountsSayWhatTheyCount(t *testing.T) {
	sync2 := map[string]string{"synchronous_commit": "on", "synchronous_standby_names": "ANY 2 (n2, n3)"}
	b := new(hb).topology(0).write(10, 10, 0, results.OK, 1).
		read(30, 10, 1, "n2", 0).read(50, 10, 2, "n3", 0).read(52, 5, 5, "n1", 1).
		add(60, 3, results.Invoke, results.WorkloadSet, results.FAdd, "", val(1)).
		add(61, 3, results.OK, results.WorkloadSet, results.FAdd, "", on("n1")).
		add(70, 4, results.Invoke, results.WorkloadSet, results.FRead, "").
		add(71, 4, results.OK, results.WorkloadSet, results.FRead, "", vals(), on("n2")).
		final(200, results.WorkloadSet, "n1", vals(1)).
		final(210, results.WorkloadRegister, "n1", val(1))
	r := CheckHistory(context.Background(), &results.History{Ops: b.ops}, Options{Settings: sync2})

	c := r.Find(NameStaleRead)
	require.NotNil(t, c)
	require.NotNil(t, c.StaleRead)
	assert.Equal(t, 2, c.StaleRead.StaleCount)
	assert.Contains(t, c.Summary, "2 of 3 register reads returned a value older")

	a := findAnomaly(r, KindStaleRead, true)
	require.NotNil(t, a, "%+v", r.Anomalies)
	assert.Equal(t, 3, a.Count)
	assert.Equal(t, map[string]int{results.WorkloadRegister: 2, results.WorkloadSet: 1}, a.ByWorkload)
	assert.Equal(t, c.StaleRead.StaleCount, a.ByWorkload[results.WorkloadRegister], "the check and the anomaly count the same register reads")
	assert.Contains(t, a.Explanation, "3 reads (2 register reads, 1 set read;")

	g := r.ModelResult(ModelGuide)
	require.NotNil(t, g)
	assert.Contains(t, g.Summary, "3 stale-read (2 register reads, 1 set read)")
}
