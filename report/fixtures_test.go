package report

import (
	"math/rand/v2"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
)

// fault is a window the generated history opens and closes.
type fault struct {
	id             int
	kind           string
	targets        []string
	startS, stopS  float64
	slowMS, failPc float64 // latency and failure rate inside the window
}

var defaultFaults = []fault{
	{id: 1, kind: "kill-primary", targets: []string{"n1"}, startS: 3, stopS: 5, slowMS: 200, failPc: 30},
	{id: 2, kind: "partition", targets: []string{"n3"}, startS: 7, stopS: 8.5, slowMS: 50, failPc: 5},
}

// genHistory makes a deterministic history of n client operations spread
// over durationS seconds by 8 processes, with the nemesis opening and
// closing each fault; inside a fault operations are slower and some fail or
// end in info. Lines are in time order, indexed as the Writer does.
func genHistory(n int, durationS float64, faults []fault) *results.History {
	rng := rand.New(rand.NewPCG(1, 2))
	h := &results.History{}
	add := func(op results.Op) {
		op.V = results.SchemaVersion
		op.Index = int64(len(h.Ops))
		h.Ops = append(h.Ops, op)
	}
	const procs = 8
	nextFree := make([]int64, procs)
	step := int64(durationS * 1e9 / float64(n) * procs)
	fi := 0
	var open []fault
	nodes := []string{"n1", "n2", "n3"}
	for i := 0; i < n; i++ {
		p := i % procs
		// Invokes follow a fixed schedule; a slow operation delays its
		// process's next one.
		t := max(nextFree[p], int64(i/procs)*step+rng.Int64N(step/4+1))
		// Nemesis steps that happen before t.
		for {
			emitted := false
			if fi < len(faults) && int64(faults[fi].startS*1e9) <= t {
				f := faults[fi]
				// The nemesis records each step as an invoke and a
				// completion that both carry the fault.
				at := int64(f.startS * 1e9)
				add(results.Op{Time: at, Process: results.NemesisProcess, Type: results.Invoke, F: f.kind, Workload: results.WorkloadNemesis,
					Fault: &results.Fault{ID: f.id, Kind: f.kind, Phase: results.PhaseStart, Targets: f.targets}})
				add(results.Op{Time: at + 20e6, Latency: 20e6, Process: results.NemesisProcess, Type: results.OK, F: f.kind, Workload: results.WorkloadNemesis,
					Fault: &results.Fault{ID: f.id, Kind: f.kind, Phase: results.PhaseStart, Targets: f.targets, Primary: "n1",
						Nodes: []results.NodeState{{Node: "n1", Role: "primary", CurrentLSN: "0/3000060"}, {Node: "n2", Role: "standby", ReplayLSN: "0/3000060"}}}})
				open = append(open, f)
				fi++
				emitted = true
			}
			for j := 0; j < len(open); j++ {
				if int64(open[j].stopS*1e9) <= t {
					f := open[j]
					at := int64(f.stopS * 1e9)
					add(results.Op{Time: at - 30e6, Process: results.NemesisProcess, Type: results.Invoke, F: "heal", Workload: results.WorkloadNemesis,
						Fault: &results.Fault{ID: f.id, Kind: f.kind, Phase: results.PhaseStop, Targets: f.targets}})
					add(results.Op{Time: at, Latency: 30e6, Process: results.NemesisProcess, Type: results.OK, F: "heal", Workload: results.WorkloadNemesis,
						Fault: &results.Fault{ID: f.id, Kind: f.kind, Phase: results.PhaseStop, Targets: f.targets, Primary: "n2", Durations: map[string]int64{"promote": 120e6}}})
					open = append(open[:j], open[j+1:]...)
					j--
					emitted = true
				}
			}
			if !emitted {
				break
			}
		}
		lat := int64(300e3 + rng.ExpFloat64()*1.5e6)
		typ := results.OK
		for _, f := range open {
			lat += int64(rng.Float64() * f.slowMS * 1e6)
			switch r := rng.Float64() * 100; {
			case r < f.failPc/2:
				typ = results.Fail
			case r < f.failPc:
				typ = results.Info
			}
		}
		f := results.FWrite
		if i%3 == 0 {
			f = results.FRead
		}
		key := "r" + string(rune('0'+i%5))
		node := nodes[i%3]
		add(results.Op{Time: t, Process: results.Process(p), Type: results.Invoke, F: f, Workload: results.WorkloadRegister, Key: key, Value: results.Int(int64(i)), Node: node})
		done := results.Op{Time: t + lat, Process: results.Process(p), Type: typ, F: f, Workload: results.WorkloadRegister, Key: key, Value: results.Int(int64(i)), Node: node, Latency: lat}
		if typ != results.OK {
			done.Error = "connection refused"
		}
		add(done)
		nextFree[p] = t + lat
	}
	// The generator emits completions right after their invokes; sort by
	// time the way a real Writer would have, keeping the index order.
	sortByTime(h)
	return h
}

func sortByTime(h *results.History) {
	sort.SliceStable(h.Ops, func(a, b int) bool { return h.Ops[a].Time < h.Ops[b].Time })
	for i := range h.Ops {
		h.Ops[i].Index = int64(i)
	}
}

var fixtureStart = time.Date(2026, 11, 28, 20, 15, 0, 0, time.UTC)

func fixtureInfo() *results.TestInfo {
	return &results.TestInfo{
		Name:               "register-set",
		Command:            []string{"strongcheck", "test", "--workload", "register,set", "--nemesis", "kill-primary,partition", "--seed", "42", "--time-limit", "10s"},
		Seed:               42,
		StartTime:          fixtureStart,
		EndTime:            fixtureStart.Add(10 * time.Second),
		StrongcheckVersion: "v0.1.0-test",
		PostgresVersion:    "15.8",
		Backend:            "local",
		Nodes:              []string{"n1", "n2", "n3"},
		Settings:           map[string]string{"synchronous_commit": "on", "synchronous_standby_names": "'ANY 2 (n2, n3)'", "wal_log_hints": "on"},
		Workloads:          []string{"register", "set"},
		Nemeses:            []string{"kill-primary", "partition"},
		Failover:           "auto",
		TimeLimitNS:        int64(10 * time.Second),
		Concurrency:        8,
		Harness:            &results.HarnessUse{DriveNS: int64(10 * time.Second), CPUNS: int64(2500 * time.Millisecond), Ops: 40000, GoMaxProcs: 1, PeakRSSBytes: 96 << 20},
	}
}

func ref(invoke int64, f, key string, value int64, node, typ string, invokeS float64, warning string) checker.OpRef {
	return checker.OpRef{
		Invoke: invoke, Complete: invoke + 1, Process: int(invoke % 8), F: f, Key: key, Value: results.Int(value), Node: node, Type: typ,
		InvokeNS: int64(invokeS * 1e9), CompleteNS: int64(invokeS*1e9) + 2e6, Warning: warning,
		SinceFaultNS: int64((invokeS - 3) * 1e9), FaultID: 1, FaultKind: "kill-primary",
	}
}

// fixtureResult is an invalid result with every kind of evidence: a
// non-linearizable key, lost writes (one with the sync-cancel warning),
// stale reads, a bad bank total, and availability with a failover.
func fixtureResult() *checker.Result {
	warn := "canceling wait for synchronous replication due to user request"
	lost := ref(2001, "add", "set", 417, "n1", "ok", 3.05, warn)
	return &checker.Result{
		Schema: checker.ResultSchema, Verdict: checker.Invalid, Ops: 20014,
		Notes: []string{"Stale reads on the standbys: synchronous_commit = on waits for the standbys' flush, not their replay; remote_apply would prevent them."},
		Checks: []checker.Check{
			{Name: checker.NameLinearizable, Verdict: checker.Invalid, Summary: "1 of 5 keys not linearizable (r3).", ElapsedNS: 812e6,
				Linearizable: &checker.LinearizableResult{Keys: 5, Ops: 6000, Pruned: 12, BadKeys: []string{"r3"},
					Visualization: "<html><body>porcupine visualization of r3</body></html>",
					Evidence:      map[string][]checker.OpRef{"r3": {ref(1500, "read", "r3", 7, "n2", "ok", 4.2, "")}}}},
			{Name: checker.NameRPO, Verdict: checker.Invalid, Summary: "2 of 3000 acknowledged writes lost, 1 acknowledged with the sync-cancel warning.", ElapsedNS: 15e6,
				RPO: &checker.RPOResult{Acknowledged: 3000, LostCount: 2, Lost: []checker.OpRef{lost, ref(2011, "add", "set", 421, "n1", "ok", 3.1, "")},
					LostWithWarning: []checker.OpRef{lost}, AckedWithWarning: 4, Recovered: 3, FinalNodes: []string{"n2", "n3"}, Divergent: []string{"n1"},
					Evidence: map[int]checker.FaultEvidence{1: {ID: 1, Kind: "kill-primary", StartNS: 3e9, StopNS: 5e9, Targets: []string{"n1"}, Primary: "n2",
						Nodes: []checker.NodeLSN{{Node: "n1", Role: "primary", LSN: "0/3000100", Timeline: 1}, {Node: "n2", Role: "standby", LSN: "0/3000060", ReplayLSN: "0/3000028", Timeline: 1}}, SyncStates: []string{"n2=streaming/quorum", "n3=streaming/quorum"}}}}},
			{Name: checker.NameStaleRead, Verdict: checker.Invalid, Summary: "12 of 4000 reads on standbys were stale, by up to 3.2 ms.", ElapsedNS: 9e6,
				StaleRead: &checker.StaleReadResult{Reads: 4000, ByNode: map[string]int{"n1": 1400, "n2": 1300, "n3": 1300}, StaleByNode: map[string]int{"n2": 7, "n3": 5},
					Stale:      []checker.StaleRead{{Read: ref(900, "read", "r1", 4, "n3", "ok", 1.5, ""), Newer: ref(880, "write", "r1", 5, "n1", "ok", 1.49, ""), StaleNS: 310e3}},
					StaleCount: 12, MaxStaleNS: 3200e3, P50StaleNS: 300e3}},
			{Name: checker.NameBank, Verdict: checker.Invalid, Summary: "1 of 500 reads saw a total of 990, want 1000.", ElapsedNS: 2e6,
				Bank: &checker.BankResult{Accounts: 5, Total: 1000, Reads: 500, BadReads: []checker.BadTotal{{Read: ref(3001, "read", "", 0, "n2", "ok", 6.5, ""), Balances: []int64{200, 190, 200, 200, 200}, Sum: 990}},
					BadReadCount: 1, Transfers: 700, FinalBalances: []int64{200, 190, 200, 200, 200}, ExpectedBalances: []int64{200, 200, 200, 200, 200}}},
			{Name: checker.NameAvailability, Verdict: checker.Valid, Summary: "2 fault windows; failover n1 -> n2 took 0.19 s to the first write.", ElapsedNS: 3e6,
				Availability: &checker.AvailabilityResult{
					Windows: []checker.Window{
						{ID: 1, Kind: "kill-primary", Targets: []string{"n1"}, StartNS: 3e9, StopNS: 5e9, Ops: checker.Outcomes{OK: 700, Fail: 120, Info: 90, P50: 2e6, P95: 90e6, P99: 180e6, Max: 201e6}, WriteGapNS: 190e6},
						{ID: 2, Kind: "partition", Targets: []string{"n3"}, StartNS: 7e9, StopNS: 8.5e9, Ops: checker.Outcomes{OK: 1500, Fail: 20, Info: 18, P50: 1.9e6, P99: 48e6, Max: 51e6}, WriteGapNS: 20e6},
					},
					Outside:   checker.Outcomes{OK: 6000, P50: 1.2e6, P99: 6e6, Max: 9e6},
					All:       checker.Outcomes{OK: 8200, Fail: 140, Info: 108, P50: 1.3e6, P99: 60e6, Max: 201e6},
					Failovers: []checker.RTO{{FaultID: 1, Old: "n1", New: "n2", KillNS: 3e9, PromotedNS: 3.12e9, FirstWriteNS: 3.19e9, ToPromotionNS: 120e6, ToFirstWriteNS: 190e6}},
				}},
		},
	}
}

func fixtureLag() []results.LagSample {
	var out []results.LagSample
	for t := int64(0); t <= 10e9; t += 250e6 {
		for _, n := range []string{"n2", "n3"} {
			b := int64(0)
			if n == "n3" && t >= 7e9 && t < 8.5e9 {
				b = (t - 7e9) / 1000
			}
			out = append(out, results.LagSample{TimeNS: t, Node: n, Primary: "n1", LagBytes: b, ReplayLagNS: b * 10, SyncState: "quorum"})
		}
	}
	return out
}

// storedRun writes a complete run into store: test.json, history,
// lag samples, node logs and, through WriteAll, everything else.
func storedRun(t testing.TB, store results.Store, at time.Time, hist *results.History, res *checker.Result) results.Run {
	t.Helper()
	info := fixtureInfo()
	info.StartTime, info.EndTime = at, at.Add(10*time.Second)
	run, err := store.NewRun(info.Name, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := results.WriteTestInfo(run.TestJSON(), info); err != nil {
		t.Fatal(err)
	}
	writeHistory(t, run.History(), hist)
	lw, err := results.CreateLag(run.Lag())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range fixtureLag() {
		if err := lw.Append(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	for _, n := range info.Nodes {
		if err := os.WriteFile(run.NodeLog(n), []byte("2026-11-28 20:15:03.100 UTC [123] LOG:  database system is ready\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteAll(run, info, hist, res); err != nil {
		t.Fatal(err)
	}
	return run
}

func writeHistory(t testing.TB, path string, h *results.History) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 0, 1<<20)
	for i := range h.Ops {
		b, err := h.Ops[i].Marshal()
		if err != nil {
			t.Fatal(err)
		}
		buf = append(append(buf, b...), '\n')
		if len(buf) > 1<<19 {
			if _, err := f.Write(buf); err != nil {
				t.Fatal(err)
			}
			buf = buf[:0]
		}
	}
	if _, err := f.Write(buf); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
