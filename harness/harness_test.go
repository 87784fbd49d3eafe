package harness

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
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

func needLocal(t testing.TB) {
	t.Helper()
	if err := local.Preflight(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	if _, err := local.FindBinaries(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
}

func backend() Backend {
	return Backend{Name: "local", SharesMachine: true, Up: func(ctx context.Context, spec cluster.Spec, dir string) (cluster.Cluster, error) {
		return local.Up(ctx, local.Options{Dir: dir, Subnet: local.AutoSubnet, Spec: spec})
	}}
}

func storeDir(t testing.TB) results.Store {
	dir, err := os.MkdirTemp("", "sc-harness-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return results.Store{Root: dir}
}

func run(t *testing.T, tt Test) (Outcome, *results.History) {
	t.Helper()
	needLocal(t)
	tt.Store = storeDir(t)
	if tt.Seed == 0 {
		tt.Seed = 1
	}
	out, err := Run(context.Background(), tt, backend())
	require.NoError(t, err)
	require.NoError(t, out.Err)
	require.NotNil(t, out.Result)
	h, err := results.ReadFile(out.Run.History())
	require.NoError(t, err)
	assertRecheckAgrees(t, out)
	return out, h
}

// assertRecheckAgrees re-checks a stored run as `strongcheck check DIR`
// does (its settings and model from test.json, nothing from the run's
// memory) and asserts the same judgement: the verdict under every model,
// every check's verdict, and the named anomalies with their counts.
func assertRecheckAgrees(t *testing.T, out Outcome) {
	t.Helper()
	info, err := results.ReadTestInfo(out.Run.TestJSON())
	require.NoError(t, err)
	res, _, err := checker.CheckFile(context.Background(), out.Run.History(),
		checker.Options{Timeout: time.Minute}.WithRun(info), nil)
	require.NoError(t, err)
	judged := func(r *checker.Result) (string, map[string]checker.Verdict, map[checker.Kind]int) {
		v := map[string]checker.Verdict{}
		for _, m := range r.Models {
			v["model "+string(m.Model)] = m.Verdict
		}
		for _, c := range r.Checks {
			v["check "+c.Name] = c.Verdict
		}
		a := map[checker.Kind]int{}
		for _, an := range r.Anomalies {
			a[an.Kind] = an.Count
		}
		return string(r.Verdict), v, a
	}
	wantV, wantM, wantA := judged(out.Result)
	gotV, gotM, gotA := judged(&res)
	assert.Equal(t, wantV, gotV, "strongcheck check's verdict on the stored run")
	assert.Equal(t, wantM, gotM, "strongcheck check's models and checks on the stored run")
	assert.Equal(t, wantA, gotA, "strongcheck check's anomalies on the stored run")
}

func nemesisOps(h *results.History, f string) []results.Op {
	var out []results.Op
	for _, op := range h.Ops {
		if op.Process == results.NemesisProcess && op.F == f && op.Type != results.Invoke {
			out = append(out, op)
		}
	}
	return out
}

// A healthy cluster with remote_apply (so standby reads are fresh), all
// three workloads, reads on every node: valid, and the store has it all.
func TestIntegrationHealthyRunAllWorkloads(t *testing.T) {
	procsBefore := runtime.GOMAXPROCS(0)
	wantProcs := (&Test{}).clientCPUs(backend())
	if wantProcs == 0 {
		wantProcs = procsBefore
	}
	out, h := run(t, Test{Name: "healthy", Workloads: []string{"register", "set", "bank"}, TimeLimit: 8 * time.Second,
		Concurrency: 6, Spec: cluster.Spec{Settings: cluster.Settings{"synchronous_commit": "remote_apply"}}})
	served := map[string]int{}
	for _, op := range h.Ops {
		if op.Type == results.OK && op.F == results.FRead && op.Process.IsClient() {
			served[op.Node]++
		}
	}
	for _, n := range []string{"n1", "n2", "n3"} {
		assert.Greater(t, served[n], 10, "reads served by %s", n)
	}
	// Every read on every node need not fit one order even so: a standby
	// replays a commit before the primary shows it (remote_apply waits
	// for the replay before the primary's commit becomes visible), so a
	// standby's read may see a write that a later read on the primary
	// does not yet. That is what linearizable-all may find; the guide's
	// and PostgreSQL's models allow it.
	for _, c := range out.Result.Checks {
		if c.Name != checker.NameLinearizable && c.Name != checker.NameLinearizableAll {
			assert.Equal(t, checker.Valid, c.Verdict, "%s: %s", c.Name, c.Summary)
		}
	}
	for _, m := range out.Result.Models {
		if m.Model != checker.ModelLinearizable {
			assert.Equal(t, checker.Valid, m.Verdict, "model %s: %s", m.Model, m.Summary)
		}
	}
	info, err := results.ReadTestInfo(out.Run.TestJSON())
	require.NoError(t, err)
	assert.Equal(t, int64(1), info.Seed)
	assert.Equal(t, "remote_apply", info.Settings["synchronous_commit"])
	assert.NotEmpty(t, info.PostgresVersion+info.Backend)
	// What the harness itself consumed while the clients ran, on the
	// client thread count chosen for a backend on the same machine.
	require.NotNil(t, info.Harness)
	assert.Equal(t, wantProcs, info.Harness.GoMaxProcs)
	assert.InDelta(t, 8*time.Second, time.Duration(info.Harness.DriveNS), float64(2*time.Second))
	assert.Greater(t, info.Harness.Ops, int64(100))
	assert.Greater(t, info.Harness.CPUPerOp(), time.Duration(0))
	assert.Equal(t, procsBefore, runtime.GOMAXPROCS(0), "GOMAXPROCS is restored after the client phase")
	for _, p := range []string{out.Run.ResultsJSON(), out.Run.ReportHTML(), out.Run.SummaryMD(), out.Run.JUnitXML(), out.Run.NodeLog("n1")} {
		_, err := os.Stat(p)
		assert.NoError(t, err, p)
	}
	finals := 0
	for _, op := range h.Ops {
		if op.F == results.FFinal && op.Type == results.OK {
			finals++
		}
	}
	assert.Equal(t, 3*(10+1+1), finals, "final reads: every key, the set and the bank on every node")
}

// kill-primary with auto failover: a new primary, all nodes streaming at
// the end, no acknowledged write lost.
func TestIntegrationKillPrimaryAuto(t *testing.T) {
	out, h := run(t, Test{Name: "kill", Workloads: []string{"set"}, TimeLimit: 10 * time.Second, Concurrency: 6,
		ReadFrom: ReadPrimary, Faults: []nemesis.Fault{{Kind: nemesis.KillPrimary}}, Interval: 8 * time.Second})
	fo := nemesisOps(h, "failover")
	require.NotEmpty(t, fo, "a failover step is recorded")
	assert.Equal(t, results.OK, fo[0].Type, fo[0].Error)
	assert.NotEqual(t, "n1", fo[0].Fault.Primary)
	rj := nemesisOps(h, "rejoin")
	require.NotEmpty(t, rj)
	assert.Equal(t, results.OK, rj[0].Type, rj[0].Error)
	settle := nemesisOps(h, "settle")
	require.Len(t, settle, 1)
	assert.Equal(t, results.OK, settle[0].Type, settle[0].Error)
	roles := map[string]int{}
	for _, s := range settle[0].Fault.Nodes {
		roles[s.Role]++
	}
	assert.Equal(t, map[string]int{"primary": 1, "standby": 2}, roles)
	rpo := out.Result.Find(checker.NameRPO)
	require.NotNil(t, rpo)
	assert.Equal(t, checker.Valid, rpo.Verdict, rpo.Summary)
	av := out.Result.Find(checker.NameAvailability)
	require.NotNil(t, av)
	require.NotEmpty(t, av.Availability.Failovers)
	f := av.Availability.Failovers[0]
	assert.Greater(t, f.ToPromotionNS, int64(0))
	assert.Greater(t, f.ToFirstWriteNS, int64(0), "writes resumed after the failover")
	t.Logf("kill to promotion %v, to first write %v", time.Duration(f.ToPromotionNS), time.Duration(f.ToFirstWriteNS))
}

// A standby partition under ANY 2: writes stop for the window and resume
// after the heal.
func TestIntegrationPartitionStandbyStopsWrites(t *testing.T) {
	out, _ := run(t, Test{Name: "part", Workloads: []string{"set"}, TimeLimit: 9 * time.Second, Concurrency: 4,
		ReadFrom: ReadPrimary, OpTimeout: 20 * time.Second,
		Faults: []nemesis.Fault{{Kind: nemesis.Partition, Target: "standby"}}, Interval: 8 * time.Second})
	av := out.Result.Find(checker.NameAvailability)
	require.NotNil(t, av)
	require.NotEmpty(t, av.Availability.Windows)
	w := av.Availability.Windows[0]
	assert.Equal(t, nemesis.Partition, w.Kind)
	span := w.StopNS - w.StartNS
	assert.Greater(t, w.WriteGapNS, span*8/10, "no write is acknowledged while a standby is cut off (gap %v of %v)",
		time.Duration(w.WriteGapNS), time.Duration(span))
	var after int64
	for _, o := range []checker.Outcomes{av.Availability.Outside} {
		after += int64(o.OK)
	}
	assert.Greater(t, after, int64(100), "writes before and after the window")
	assert.Equal(t, checker.Valid, out.Result.Find(checker.NameRPO).Verdict)
}

// A run killed with SIGKILL mid-way leaves a history the reader accepts
// and the checker judges (rpo unknown: no final reads), and the next run's
// sweep removes its cluster.
func TestIntegrationKilledRunLeavesReadableHistory(t *testing.T) {
	if root := os.Getenv("SC_KILLED_RUN_STORE"); root != "" {
		_, _ = Run(context.Background(), Test{Name: "killed", Workloads: []string{"register", "set"}, TimeLimit: time.Minute,
			Concurrency: 4, Seed: 3, Store: results.Store{Root: root}}, backend())
		return
	}
	needLocal(t)
	store := storeDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIntegrationKilledRunLeavesReadableHistory$")
	cmd.Env = append(os.Environ(), "SC_KILLED_RUN_STORE="+store.Dir())
	require.NoError(t, cmd.Start())
	hist := ""
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if run, err := store.Latest("killed"); err == nil {
			if fi, err := os.Stat(run.History()); err == nil && fi.Size() > 200_000 {
				hist = run.History()
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NotEmpty(t, hist, "the child run wrote a history")
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	h, err := results.ReadFile(hist)
	require.NoError(t, err, "a killed run's history is readable")
	assert.Greater(t, len(h.Ops), 1000)
	res := checker.CheckHistory(context.Background(), h, checker.Options{})
	rpo := res.Find(checker.NameRPO)
	require.NotNil(t, rpo)
	assert.Equal(t, checker.Unknown, rpo.Verdict, "no final reads: lost writes cannot be judged")
	assert.NotEqual(t, checker.Valid, res.Verdict, "a killed run is never a pass")
	removed, err := local.Sweep()
	require.NoError(t, err)
	assert.Len(t, removed, 1, "the killed run's cluster is swept")
	out, _ := exec.Command("pgrep", "-f", "-a", "postgres -D "+store.Dir()).Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "no server of the killed run is left")
}

func TestClientCPUs(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set: the automatic choice defers to it")
	}
	local, remote := Backend{SharesMachine: true}, Backend{}
	auto := max(1, runtime.NumCPU()/4)
	assert.Equal(t, auto, (&Test{}).clientCPUs(local))
	assert.Equal(t, 0, (&Test{}).clientCPUs(remote), "a remote cluster: Go's default")
	assert.Equal(t, 3, (&Test{ClientCPUs: 3}).clientCPUs(local))
	assert.Equal(t, 3, (&Test{ClientCPUs: 3}).clientCPUs(remote))
	t.Setenv("GOMAXPROCS", "2")
	assert.Equal(t, 0, (&Test{}).clientCPUs(local), "the user's GOMAXPROCS wins over the automatic choice")
}

func TestValidateRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Test)
		want string
	}{
		{"unknown workload", func(t *Test) { t.Workloads = []string{"queue"} }, "unknown workload"},
		{"zero concurrency", func(t *Test) { t.Concurrency = -1 }, "concurrency"},
		{"bad read-from", func(t *Test) { t.ReadFrom = "replicas" }, "read-from"},
		{"negative time", func(t *Test) { t.TimeLimit = -time.Second }, "--time-limit"},
		{"bad node name", func(t *Test) { t.Spec.Nodes = []string{"n1", "N 2"} }, "node name"},
		{"bad test name", func(t *Test) { t.Name = "../x" }, ""},
		{"negative client CPUs", func(t *Test) { t.ClientCPUs = -1 }, "--client-cpus"},
		{"read-all-keys without append", func(t *Test) { t.Options.ReadAllKeys = true }, "--read-all-keys is for the append workload"},
		{"read-all-keys with writes only", func(t *Test) {
			t.Workloads, t.Options.ReadAllKeys, t.Options.WritesOnly = []string{results.WorkloadAppend}, true, true
		}, "--read-all-keys with --writes-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := Test{}
			tt.Defaults()
			tc.mod(&tt)
			_, err := Run(context.Background(), tt, Backend{Name: "none", Up: func(context.Context, cluster.Spec, string) (cluster.Cluster, error) {
				t.Fatal("the cluster must not start on bad input")
				return nil, nil
			}})
			require.ErrorIs(t, err, ErrUsage)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

// test.json is written through one function that says when it could not
// write it, and what it writes reads back.
func TestSaveInfoReportsItsError(t *testing.T) {
	dir := t.TempDir()
	r := &runner{run: results.Run{Dir: dir}, info: &results.TestInfo{Name: "x", Seed: 7, Extra: map[string]string{}}}
	require.NoError(t, r.saveInfo())
	back, err := results.ReadTestInfo(r.run.TestJSON())
	require.NoError(t, err)
	assert.Equal(t, int64(7), back.Seed)

	notADir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notADir, nil, 0o644))
	r.run.Dir = notADir
	err = r.saveInfo()
	require.ErrorIs(t, err, ErrInfra)
	assert.Contains(t, err.Error(), "test.json")
}
