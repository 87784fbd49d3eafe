package checker

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
)

// hb builds a history by hand: each call appends one entry at time t.
type hb struct{ ops []results.Op }

type mod func(*results.Op)

func val(v int64) mod     { return func(o *results.Op) { o.Value = results.Int(v) } }
func exp(v int64) mod     { return func(o *results.Op) { o.Expect = results.Int(v) } }
func on(n string) mod     { return func(o *results.Op) { o.Node = n } }
func vals(v ...int64) mod { return func(o *results.Op) { o.Values = v } }
func ids(v ...int64) mod  { return func(o *results.Op) { o.IDs = v } }
func warn(w string) mod   { return func(o *results.Op) { o.Warning = w } }
func fault(f results.Fault) mod {
	return func(o *results.Op) { o.Fault = &f }
}
func xfer(id int64, from, to int, amount int64) mod {
	return func(o *results.Op) {
		o.Transfer = &results.Transfer{ID: id, From: from, To: to, Amount: amount}
	}
}

func (b *hb) add(t int64, p results.Process, typ results.Type, wl, f, key string, mods ...mod) *hb {
	op := results.Op{V: results.SchemaVersion, Index: int64(len(b.ops)), Time: t, Process: p, Type: typ, Workload: wl, F: f, Key: key}
	for _, m := range mods {
		m(&op)
	}
	b.ops = append(b.ops, op)
	return b
}

// Shorthands for register operations and final reads.
func (b *hb) reg(t int64, p results.Process, typ results.Type, f string, mods ...mod) *hb {
	return b.add(t, p, typ, results.WorkloadRegister, f, "k0", mods...)
}

func (b *hb) final(t int64, wl, node string, mods ...mod) *hb {
	key := ""
	if wl == results.WorkloadRegister {
		key = "k0"
	}
	b.add(t, results.HarnessProcess, results.Invoke, wl, results.FFinal, key, on(node))
	return b.add(t+1, results.HarnessProcess, results.OK, wl, results.FFinal, key, append([]mod{on(node)}, mods...)...)
}

func (b *hb) nemesis(t0, t1 int64, f results.Fault) *hb {
	return b.step(t0, t1, f.Kind, f)
}

// step is a nemesis step named verb (as the nemesis names its steps:
// kill-primary, failover, repoint, rejoin, ...) of fault f.
func (b *hb) step(t0, t1 int64, verb string, f results.Fault) *hb {
	return b.stepAs(t0, t1, verb, f, results.OK, "")
}

// stepAs is step whose completion has type typ (and errText, unless ok).
func (b *hb) stepAs(t0, t1 int64, verb string, f results.Fault, typ results.Type, errText string) *hb {
	b.add(t0, results.NemesisProcess, results.Invoke, results.WorkloadNemesis, verb, "", fault(f))
	return b.add(t1, results.NemesisProcess, typ, results.WorkloadNemesis, verb, "", fault(f), func(o *results.Op) {
		if typ != results.OK {
			o.Error = errText
		}
	})
}

var (
	killN1 = results.Fault{ID: 2, Kind: kindKillPrimary, Phase: results.PhaseStart, Targets: []string{"n1"},
		Nodes:       []results.NodeState{{Node: "n1", Role: "primary", CurrentLSN: "0/3000100"}, {Node: "n2", Role: "standby", ReceiveLSN: "0/3000000", ReplayLSN: "0/2FFFF00"}},
		Replication: []results.ReplicationState{{Name: "n2", State: "streaming", SyncState: "quorum"}}}
	failoverN2 = results.Fault{ID: 2, Kind: kindFailover, Phase: results.PhaseStep, Primary: "n2"}
	rejoinN1   = results.Fault{ID: 2, Kind: kindKillPrimary, Phase: results.PhaseStop, Targets: []string{"n1"}, Primary: "n2"}
	partition  = results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseStart, Targets: []string{"n2"},
		Replication: []results.ReplicationState{{Name: "n2", State: "streaming", SyncState: "quorum", ReplyAgeMS: 4000}}}
	healN2 = results.Fault{ID: 1, Kind: "partition", Phase: results.PhaseStop, Targets: []string{"n2"}}
)

const syncWarn = "canceling wait for synchronous replication due to user request"

func TestCheckHistory(t *testing.T) {
	type want map[string]Verdict
	cases := []struct {
		name    string
		hist    *hb
		opts    Options
		verdict Verdict
		checks  want
		more    func(t *testing.T, r Result)
	}{
		{
			name: "register: acknowledged write lost after failover",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
				nemesis(30, 31, killN1).
				nemesis(32, 40, failoverN2).
				nemesis(60, 70, rejoinN1).
				final(100, results.WorkloadRegister, "n2", val(0)),
			verdict: Invalid,
			checks:  want{NameRPO: Invalid, NameLinearizable: Valid, NameStaleRead: Valid, NameAvailability: Valid, NameFaults: Valid},
			more: func(t *testing.T, r Result) {
				p := r.Find(NameRPO).RPO
				require.Len(t, p.Lost, 1)
				assert.Equal(t, int64(1), *p.Lost[0].Value)
				assert.Equal(t, "n1", p.Lost[0].Node)
				assert.Equal(t, int64(20), p.Lost[0].CompleteNS)
				assert.Equal(t, []string{"n2"}, p.FinalNodes)
				// The failover that lost it is the evidence, with its LSNs.
				require.Contains(t, p.Evidence, 2)
				assert.Equal(t, "0/3000100", p.Evidence[2].Nodes[0].LSN)
				assert.Equal(t, []string{"n2=streaming/quorum"}, p.Evidence[2].SyncStates)
				assert.Contains(t, strings.Join(r.Notes, " "), "RPO = 0 broke")
				a := findAnomaly(r, KindLostWrite, false)
				require.NotNil(t, a, "a lost write, undocumented with ANY 2 and a safe failover")
				assert.Equal(t, 1, a.Count)
				assert.Equal(t, Invalid, r.ModelResult(ModelPostgres).Verdict)
			},
		},
		{
			name: "register: the write survived the failover",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
				nemesis(30, 31, killN1).
				nemesis(32, 40, failoverN2).
				nemesis(60, 70, rejoinN1).
				final(100, results.WorkloadRegister, "n2", val(1)).
				final(110, results.WorkloadRegister, "n3", val(1)),
			verdict: Valid,
			checks:  want{NameRPO: Valid, NameLinearizable: Valid, NameStaleRead: Valid},
		},
		{
			name: "register: a read of a value later lost (vanished, not linearizable)",
			hist: new(hb).
				nemesis(5, 6, partition).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1"), warn(syncWarn)).
				reg(22, 1, results.Invoke, results.FRead).
				reg(25, 1, results.OK, results.FRead, val(1), on("n1")).
				nemesis(30, 31, killN1).
				nemesis(32, 40, failoverN2).
				reg(45, 1, results.Invoke, results.FRead).
				reg(50, 1, results.OK, results.FRead, val(0), on("n2")).
				nemesis(60, 70, rejoinN1).
				nemesis(71, 72, healN2).
				final(100, results.WorkloadRegister, "n2", val(0)),
			verdict: Invalid,
			checks:  want{NameRPO: Invalid, NameLinearizable: Invalid, NameStaleRead: Invalid},
			more: func(t *testing.T, r Result) {
				p := r.Find(NameRPO).RPO
				require.Len(t, p.Vanished, 1)
				assert.Equal(t, int64(1), *p.Vanished[0].Value)
				require.Len(t, p.LostWithWarning, 1)
				assert.Equal(t, 1, p.AckedWithWarning)
				assert.Equal(t, int64(5), p.Lost[0].SinceFaultNS)
				assert.Equal(t, 1, p.Lost[0].FaultID)
				assert.Equal(t, "partition", p.Lost[0].FaultKind)
				assert.Equal(t, []string{"n2=streaming/quorum (last reply 4000 ms ago)"}, p.Evidence[1].SyncStates)
				l := r.Find(NameLinearizable).Linearizable
				assert.Equal(t, []string{"k0"}, l.BadKeys)
				assert.NotEmpty(t, l.Evidence["k0"])
				assert.Contains(t, l.Visualization, "<html")
				assert.Contains(t, l.Visualization, "kill-primary")
				assert.Contains(t, strings.Join(r.Notes, " "), "canceling wait for synchronous replication")
				// Every finding is named and documented: the write's
				// wait was cancelled.
				assert.Equal(t, []string{"k0"}, keysOf(l.Explained))
				assert.Empty(t, l.Unexplained)
				for _, k := range []Kind{KindLostWarned, KindVanished, KindStaleRead} {
					a := findAnomaly(r, k, true)
					require.NotNil(t, a, "%s, documented", k)
				}
				assert.Equal(t, Valid, r.ModelResult(ModelPostgres).Verdict, r.ModelsLine())
				assert.Equal(t, Invalid, r.ModelResult(ModelGuide).Verdict)
			},
		},
		{
			name: "set: acknowledged add lost",
			hist: new(hb).
				add(10, 0, results.Invoke, results.WorkloadSet, results.FAdd, "", val(1)).
				add(11, 0, results.OK, results.WorkloadSet, results.FAdd, "", on("n1")).
				add(12, 0, results.Invoke, results.WorkloadSet, results.FAdd, "", val(2)).
				add(13, 0, results.OK, results.WorkloadSet, results.FAdd, "", on("n1")).
				add(14, 0, results.Invoke, results.WorkloadSet, results.FAdd, "", val(3)).
				add(15, 0, results.Info, results.WorkloadSet, results.FAdd, "", on("n1")).
				add(16, 1, results.Invoke, results.WorkloadSet, results.FRead, "").
				add(17, 1, results.OK, results.WorkloadSet, results.FRead, "", vals(1, 2), on("n3")).
				final(100, results.WorkloadSet, "n1", vals(1, 3)),
			verdict: Invalid,
			checks:  want{NameRPO: Invalid, NameAvailability: Valid},
			more: func(t *testing.T, r Result) {
				p := r.Find(NameRPO).RPO
				require.Len(t, p.Lost, 1)
				assert.Equal(t, int64(2), *p.Lost[0].Value)
				assert.Equal(t, 1, p.Recovered)
				assert.Equal(t, 2, p.Acknowledged)
				require.Len(t, p.Vanished, 1)
				assert.Nil(t, r.Find(NameLinearizable), "no register workload, no linearizability check")
			},
		},
		{
			name: "set: every acknowledged add is there",
			hist: new(hb).
				add(10, 0, results.Invoke, results.WorkloadSet, results.FAdd, "", val(1)).
				add(11, 0, results.OK, results.WorkloadSet, results.FAdd, "", on("n1")).
				add(12, 0, results.Invoke, results.WorkloadSet, results.FAdd, "", val(2)).
				add(13, 0, results.Fail, results.WorkloadSet, results.FAdd, "", on("n1")).
				final(100, results.WorkloadSet, "n1", vals(1)),
			verdict: Valid,
			checks:  want{NameRPO: Valid},
		},
		{
			name: "register: stale read on a standby",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
				reg(30, 1, results.Invoke, results.FRead).
				reg(40, 1, results.OK, results.FRead, val(0), on("n2")).
				final(100, results.WorkloadRegister, "n1", val(1)),
			verdict: Invalid,
			checks:  want{NameStaleRead: Invalid, NameLinearizable: Valid, NameLinearizableAll: Invalid, NameRPO: Valid},
			more: func(t *testing.T, r Result) {
				s := r.Find(NameStaleRead).StaleRead
				assert.Equal(t, 1, s.StaleCount)
				assert.Equal(t, map[string]int{"n2": 1}, s.StaleByNode)
				assert.Equal(t, int64(10), s.MaxStaleNS)
				require.Len(t, s.Stale, 1)
				assert.Equal(t, int64(1), *s.Stale[0].Newer.Value)
				notes := strings.Join(r.Notes, " ")
				assert.Contains(t, notes, "flushed its WAL, not replayed it")
				assert.Contains(t, notes, "remote_apply")
				a := findAnomaly(r, KindStaleRead, true)
				require.NotNil(t, a)
				assert.Equal(t, map[string]int{"standby": 1}, a.ByRole)
				assert.Equal(t, "satisfies postgres", r.ModelResult(ModelPostgres).Summary)
				assert.Equal(t, "rules out guide: 1 stale-read (documented)", r.ModelResult(ModelGuide).Summary)
			},
		},
		{
			name: "register: fresh read on a standby, and one concurrent with the write",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(15, 2, results.Invoke, results.FRead).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
				reg(30, 1, results.Invoke, results.FRead).
				reg(35, 2, results.OK, results.FRead, val(0), on("n3")).
				reg(40, 1, results.OK, results.FRead, val(1), on("n2")).
				final(100, results.WorkloadRegister, "n1", val(1)),
			verdict: Valid,
			checks:  want{NameStaleRead: Valid, NameLinearizable: Valid, NameRPO: Valid},
		},
		{
			name: "register: stale read with remote_apply is named a real violation",
			opts: Options{Settings: map[string]string{"synchronous_commit": "remote_apply"}},
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
				reg(30, 1, results.Invoke, results.FRead).
				reg(40, 1, results.OK, results.FRead, val(0), on("n2")).
				final(100, results.WorkloadRegister, "n1", val(1)),
			verdict: Invalid,
			checks:  want{NameStaleRead: Invalid},
			more: func(t *testing.T, r Result) {
				assert.Contains(t, strings.Join(r.Notes, " "), "a finding")
				require.NotNil(t, findAnomaly(r, KindStaleRead, false), "remote_apply with ANY 2: a stale read on a standby is not documented")
				assert.Equal(t, Invalid, r.ModelResult(ModelPostgres).Verdict)
			},
		},
		{
			name: "register: info write that took effect",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.Info, results.FWrite).
				reg(30, 1, results.Invoke, results.FRead).
				reg(40, 1, results.OK, results.FRead, val(1), on("n2")).
				final(100, results.WorkloadRegister, "n1", val(1)),
			verdict: Valid,
			checks:  want{NameLinearizable: Valid, NameRPO: Valid, NameStaleRead: Valid},
			more: func(t *testing.T, r Result) {
				assert.Equal(t, 1, r.Find(NameRPO).RPO.Recovered)
				assert.Equal(t, 1, r.Find(NameLinearizable).Linearizable.Pruned, "only a standby saw it: the primary's history can leave it out")
				assert.Equal(t, 0, r.Find(NameLinearizableAll).Linearizable.Pruned)
			},
		},
		{
			name: "register: info write that did not take effect",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.Info, results.FWrite).
				reg(30, 1, results.Invoke, results.FRead).
				reg(40, 1, results.OK, results.FRead, val(0), on("n2")).
				final(100, results.WorkloadRegister, "n1", val(0)),
			verdict: Valid,
			checks:  want{NameLinearizable: Valid, NameRPO: Valid, NameStaleRead: Valid},
			more: func(t *testing.T, r Result) {
				assert.Equal(t, 1, r.Find(NameLinearizable).Linearizable.Pruned)
			},
		},
		{
			name: "register: info cas chain needs the info write it expects",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(11, 1, results.Invoke, results.FCAS, exp(1), val(2)).
				reg(12, 2, results.Invoke, results.FCAS, exp(2), val(3)).
				reg(20, 0, results.Info, results.FWrite).
				reg(21, 1, results.Info, results.FCAS).
				reg(22, 2, results.OK, results.FCAS, on("n1")).
				final(100, results.WorkloadRegister, "n1", val(3)),
			verdict: Valid,
			checks:  want{NameLinearizable: Valid, NameRPO: Valid},
		},
		{
			name: "register: a value no write produced",
			hist: new(hb).
				reg(30, 1, results.Invoke, results.FRead).
				reg(40, 1, results.OK, results.FRead, val(99), on("n2")).
				final(100, results.WorkloadRegister, "n1", val(0)),
			verdict: Invalid,
			checks:  want{NameRPO: Invalid, NameLinearizableAll: Invalid},
			more: func(t *testing.T, r Result) {
				require.Len(t, r.Find(NameRPO).RPO.Unexpected, 1)
				require.NotNil(t, findAnomaly(r, KindUnwritten, false))
			},
		},
		{
			name: "register: a standby that diverged after settling",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
				final(100, results.WorkloadRegister, "n1", val(1)).
				final(110, results.WorkloadRegister, "n3", val(0)),
			verdict: Invalid,
			checks:  want{NameRPO: Invalid},
			more: func(t *testing.T, r Result) {
				assert.Equal(t, []string{"n3"}, r.Find(NameRPO).RPO.Divergent)
			},
		},
		{
			name: "bank: a read whose total changed",
			hist: new(hb).
				add(0, results.HarnessProcess, results.OK, results.WorkloadBank, results.FInit, "", vals(100, 100)).
				add(10, 0, results.Invoke, results.WorkloadBank, results.FTransfer, "", xfer(1, 0, 1, 50)).
				add(20, 0, results.OK, results.WorkloadBank, results.FTransfer, "", on("n1")).
				add(30, 1, results.Invoke, results.WorkloadBank, results.FRead, "").
				add(40, 1, results.OK, results.WorkloadBank, results.FRead, "", vals(100, 150), on("n2")).
				final(100, results.WorkloadBank, "n1", vals(50, 150), ids(1)),
			verdict: Invalid,
			checks:  want{NameBank: Invalid, NameRPO: Valid},
			more: func(t *testing.T, r Result) {
				b := r.Find(NameBank).Bank
				assert.Equal(t, int64(200), b.Total)
				require.Len(t, b.BadReads, 1)
				assert.Equal(t, int64(250), b.BadReads[0].Sum)
			},
		},
		{
			name: "bank: totals kept and the transfer survived",
			hist: new(hb).
				add(0, results.HarnessProcess, results.OK, results.WorkloadBank, results.FInit, "", vals(100, 100)).
				add(10, 0, results.Invoke, results.WorkloadBank, results.FTransfer, "", xfer(1, 0, 1, 50)).
				add(20, 0, results.OK, results.WorkloadBank, results.FTransfer, "", on("n1")).
				add(30, 1, results.Invoke, results.WorkloadBank, results.FRead, "").
				add(40, 1, results.OK, results.WorkloadBank, results.FRead, "", vals(50, 150), on("n2")).
				final(100, results.WorkloadBank, "n1", vals(50, 150), ids(1)),
			verdict: Valid,
			checks:  want{NameBank: Valid, NameRPO: Valid, NameAvailability: Valid},
		},
		{
			name: "bank: an acknowledged transfer lost",
			hist: new(hb).
				add(0, results.HarnessProcess, results.OK, results.WorkloadBank, results.FInit, "", vals(100, 100)).
				add(10, 0, results.Invoke, results.WorkloadBank, results.FTransfer, "", xfer(1, 0, 1, 50)).
				add(20, 0, results.OK, results.WorkloadBank, results.FTransfer, "", on("n1")).
				final(100, results.WorkloadBank, "n1", vals(100, 100), ids()),
			verdict: Invalid,
			checks:  want{NameBank: Invalid, NameRPO: Invalid},
			more: func(t *testing.T, r Result) {
				require.Len(t, r.Find(NameBank).Bank.LostTransfers, 1)
				assert.Equal(t, int64(1), *r.Find(NameRPO).RPO.Lost[0].Value)
			},
		},
		{
			name: "bank: final balances do not match the transfer log",
			hist: new(hb).
				add(0, results.HarnessProcess, results.OK, results.WorkloadBank, results.FInit, "", vals(100, 100)).
				add(10, 0, results.Invoke, results.WorkloadBank, results.FTransfer, "", xfer(1, 0, 1, 50)).
				add(20, 0, results.Info, results.WorkloadBank, results.FTransfer, "").
				final(100, results.WorkloadBank, "n1", vals(50, 150), ids()),
			verdict: Invalid,
			checks:  want{NameBank: Invalid, NameRPO: Valid},
			more: func(t *testing.T, r Result) {
				assert.Equal(t, []int64{100, 100}, r.Find(NameBank).Bank.ExpectedBalances)
			},
		},
		{
			name: "no final reads: rpo cannot judge",
			hist: new(hb).
				reg(10, 0, results.Invoke, results.FWrite, val(1)).
				reg(20, 0, results.OK, results.FWrite, val(1), on("n1")).
				reg(30, 1, results.Invoke, results.FRead),
			verdict: Unknown,
			checks:  want{NameRPO: Unknown, NameLinearizable: Valid, NameStaleRead: Valid},
			more: func(t *testing.T, r Result) {
				assert.Contains(t, r.Find(NameRPO).Error, "no final read")
				assert.Contains(t, strings.Join(r.Notes, " "), "Unknown is not a pass")
			},
		},
		{
			name: "no final reads but an unexpected value: invalid anyway",
			hist: new(hb).
				reg(30, 1, results.Invoke, results.FRead).
				reg(40, 1, results.OK, results.FRead, val(7), on("n1")),
			verdict: Invalid,
			checks:  want{NameRPO: Invalid},
		},
		{
			name: "availability: RTO of a kill of the primary",
			hist: new(hb).
				nemesis(100, 110, killN1).
				nemesis(111, 150, failoverN2).
				reg(105, 0, results.Invoke, results.FWrite, val(1)).
				reg(155, 0, results.OK, results.FWrite, val(1), on("n1")).
				reg(152, 1, results.Invoke, results.FWrite, val(2)).
				reg(170, 1, results.OK, results.FWrite, val(2), on("n2")).
				add(200, results.NemesisProcess, results.Invoke, results.WorkloadNemesis, kindKillPrimary, "", fault(results.Fault{ID: 2, Kind: kindKillPrimary, Phase: results.PhaseStop})).
				add(210, results.NemesisProcess, results.OK, results.WorkloadNemesis, kindKillPrimary, "", fault(results.Fault{ID: 2, Kind: kindKillPrimary, Phase: results.PhaseStop})).
				final(300, results.WorkloadRegister, "n2", val(2)),
			verdict: Valid,
			checks:  want{NameAvailability: Valid},
			more: func(t *testing.T, r Result) {
				a := r.Find(NameAvailability).Availability
				require.Len(t, a.Failovers, 1)
				f := a.Failovers[0]
				assert.Equal(t, RTO{FaultID: 2, Old: "n1", New: "n2", KillNS: 110, PromotedNS: 150, FirstWriteNS: 170, ToPromotionNS: 40, ToFirstWriteNS: 60}, f)
				require.Len(t, a.Windows, 1)
				assert.Equal(t, int64(210), a.Windows[0].StopNS)
				assert.Equal(t, 2, a.Windows[0].Ops.OK)
			},
		},
		{
			// The nemesis points the clients at the new primary before it
			// verifies it: the promotion counts from that switch, and a
			// write the new primary acknowledged during the verification
			// is the first write.
			name: "availability: promotion counts from the clients' switch",
			hist: new(hb).
				nemesis(100, 110, killN1).
				add(111, results.NemesisProcess, results.Invoke, results.WorkloadNemesis, kindFailover, "", fault(failoverN2)).
				add(130, results.NemesisProcess, results.OK, results.WorkloadNemesis, "switch-primary", "",
					fault(results.Fault{ID: 2, Kind: kindKillPrimary, Phase: results.PhaseInfo, Primary: "n2"})).
				reg(131, 1, results.Invoke, results.FWrite, val(2)).
				reg(140, 1, results.OK, results.FWrite, val(2), on("n2")).
				add(150, results.NemesisProcess, results.OK, results.WorkloadNemesis, kindFailover, "", fault(failoverN2)).
				step(200, 210, kindKillPrimary, rejoinN1).
				final(300, results.WorkloadRegister, "n2", val(2)),
			verdict: Valid,
			checks:  want{NameAvailability: Valid},
			more: func(t *testing.T, r Result) {
				a := r.Find(NameAvailability).Availability
				require.Len(t, a.Failovers, 1)
				assert.Equal(t, RTO{FaultID: 2, Old: "n1", New: "n2", KillNS: 110, PromotedNS: 130, FirstWriteNS: 140, ToPromotionNS: 20, ToFirstWriteNS: 30}, a.Failovers[0])
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := CheckHistory(context.Background(), &results.History{Ops: tc.hist.ops}, tc.opts)
			for name, v := range tc.checks {
				c := r.Find(name)
				require.NotNil(t, c, "check %s did not run", name)
				assert.Equal(t, v, c.Verdict, "%s: %s %s", name, c.Summary, c.Error)
			}
			assert.Equal(t, tc.verdict, r.Verdict, "notes: %v", r.Notes)
			assert.Equal(t, len(tc.hist.ops), r.Ops)
			assert.NotEmpty(t, r.Notes)
			if tc.more != nil {
				tc.more(t, r)
			}
		})
	}
}

// A linearizability search that runs out of time is unknown, never valid.
func TestLinearizableTimeoutIsUnknown(t *testing.T) {
	ops := histgen.Register(3, 2000, histgen.RegisterOptions{Keys: 4, Final: true})
	r := CheckHistory(context.Background(), &results.History{Ops: ops}, Options{Timeout: time.Nanosecond})
	l := r.Find(NameLinearizable)
	assert.Equal(t, Unknown, l.Verdict)
	assert.Len(t, l.Linearizable.TimedOut, 4)
	assert.Equal(t, Unknown, r.Verdict)
	assert.Contains(t, strings.Join(r.Notes, " "), "Unknown is not a pass")

	// With time enough, the same history is valid.
	r = CheckHistory(context.Background(), &results.History{Ops: ops}, Options{Timeout: time.Minute})
	assert.Equal(t, Valid, r.Verdict, "%+v", r.Checks)
}

// A history torn by a killed run is checked up to the tear; without final
// reads rpo is unknown.
func TestTornHistory(t *testing.T) {
	ops := histgen.Register(4, 300, histgen.RegisterOptions{Keys: 3})
	var buf bytes.Buffer
	for i := range ops {
		b, err := ops[i].Marshal()
		require.NoError(t, err)
		buf.Write(b)
		buf.WriteByte('\n')
	}
	torn := buf.Bytes()[:buf.Len()-10] // the last line cut short
	h, err := results.Read(bytes.NewReader(torn))
	require.NoError(t, err)
	require.True(t, h.Torn)
	r := CheckHistory(context.Background(), h, Options{})
	assert.True(t, r.Torn)
	assert.Equal(t, len(ops)-1, r.Ops)
	assert.Equal(t, Unknown, r.Find(NameRPO).Verdict)
	assert.Equal(t, Valid, r.Find(NameLinearizable).Verdict)
	assert.Equal(t, Unknown, r.Verdict)
	assert.Contains(t, strings.Join(r.Notes, " "), "torn line")
}

func TestCombine(t *testing.T) {
	cases := []struct {
		in   []Verdict
		want Verdict
	}{
		{nil, Unknown},
		{[]Verdict{Valid}, Valid},
		{[]Verdict{Valid, Valid}, Valid},
		{[]Verdict{Valid, Unknown}, Unknown},
		{[]Verdict{Unknown, Invalid, Valid}, Invalid},
		{[]Verdict{Valid, "bogus"}, Unknown},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, Combine(tc.in...), "%v", tc.in)
	}
}

// Generated histories are linearizable by construction: the checkers must
// never call them invalid.
func TestGeneratedHistoriesAreValid(t *testing.T) {
	for seed := range int64(6) {
		ops := histgen.Register(seed, 3000, histgen.RegisterOptions{Keys: 1 + int(seed), Processes: 8, InfoRate: 0.2, Final: true})
		r := CheckHistory(context.Background(), &results.History{Ops: ops}, Options{})
		require.Equal(t, Valid, r.Verdict, "seed %d: %+v", seed, r.Checks)
	}
}

func TestNth(t *testing.T) {
	s := []int64{5, 1, 4, 1, 5, 9, 2, 6, 5, 3}
	for k, want := range []int64{1, 1, 2, 3, 4, 5, 5, 5, 6, 9} {
		c := append([]int64(nil), s...)
		assert.Equal(t, want, nth(c, k), "k=%d", k)
	}
}

// findAnomaly returns the anomaly of kind with that documentation, or nil.
func findAnomaly(r Result, kind Kind, documented bool) *Anomaly {
	for i := range r.Anomalies {
		if a := &r.Anomalies[i]; a.Kind == kind && a.Documented == documented {
			return a
		}
	}
	return nil
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
