package existing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cli"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/existing"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/internal/existingtest"
	"github.com/strongcheck/strongcheck/internal/leakcheck"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

func needLocal(t *testing.T) {
	t.Helper()
	if err := local.Preflight(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	if _, err := local.FindBinaries(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(append([]string{"strongcheck"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// existingArgs is a `test --backend existing` on the fixture's nodes.
func existingArgs(fx *existingtest.Fixture, store string, nodes []string, extra ...string) []string {
	args := []string{"test", "--backend", "existing", "--store", store, "--workload", "register,set",
		"--concurrency", "4", "--op-timeout", "1s", "--seed", "24"}
	for _, n := range nodes {
		args = append(args, "--node", n)
	}
	return append(args, extra...)
}

func faultArgs(fx *existingtest.Fixture) []string {
	var out []string
	for _, c := range fx.FaultCmds() {
		out = append(out, "--fault-cmd", c)
	}
	return out
}

// assertUnchanged checks that the cluster is as the test found it: no
// strongcheck_ schema, no cut left, both standbys streaming from n1.
func assertUnchanged(t *testing.T, fx *existingtest.Fixture) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fx.Admin("n1"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var schemas int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'strongcheck\_%'`).Scan(&schemas))
	assert.Zero(t, schemas, "a strongcheck_ schema is left on the cluster")
	assert.NoError(t, cluster.WaitStreaming(ctx, fx.AsCluster(), "n1", []string{"n2", "n3"}, false), "both standbys stream again")
	for _, n := range fx.Local.Nodes() {
		out, _ := exec.Command("sh", "-c", "ip netns list").Output()
		assert.NotEmpty(t, out)
		_, err := cluster.QueryState(ctx, fx.Admin(n))
		assert.NoError(t, err, "%s answers", n)
	}
	assert.NoError(t, exec.Command("sh", "-c", "! ip -all netns exec nft list table inet sc_user_cut 2>/dev/null | grep -q chain").Run(), "a cut is left")
}

// validRun runs a faulted test on fx that must exit 0 under --model
// postgres, and returns its run and history.
func validRun(t *testing.T, fx *existingtest.Fixture, extra ...string) (results.Run, string) {
	t.Helper()
	store := t.TempDir()
	t0 := time.Now()
	args := existingArgs(fx, store, fx.Nodes(), append([]string{"--model", "postgres", "--allow-faults", "n1"}, extra...)...)
	code, out, errOut := runCLI(append(args, faultArgs(fx)...)...)
	t.Logf("exit %d in %.1fs\n%s", code, time.Since(t0).Seconds(), out)
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	run, err := results.Store{Root: store}.Latest("register-set")
	require.NoError(t, err)
	hist, err := os.ReadFile(run.History())
	require.NoError(t, err)
	return run, string(hist)
}

// A local cluster started outside the harness, attached by connection
// strings, faulted only through the fault script: every step verified
// through SQL, RPO judged, valid under --model postgres; then every kind
// of bad input refused with its own message and exit code, leaving the
// cluster as it was.
func TestIntegrationExistingCluster(t *testing.T) {
	needLocal(t)
	ctx := context.Background()
	fx, err := existingtest.Up(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fx.Close(context.Background())) })
	nodes := fx.Nodes()

	t.Run("dry run", func(t *testing.T) {
		store := t.TempDir()
		code, out, errOut := runCLI(append(existingArgs(fx, store, nodes, "--sequence", "kill n3; start n3; partition n2; heal", "--allow-faults", "n1", "--dry-run"), faultArgs(fx)...)...)
		require.Equal(t, 0, code, errOut)
		assert.Contains(t, out, "pg_is_in_recovery()")
		assert.Contains(t, out, "found: n1 primary")
		assert.Regexp(t, `CREATE SCHEMA "strongcheck_[0-9t_z]+"`, out)
		assert.Contains(t, out, `GRANT USAGE ON SCHEMA`)
		assert.Contains(t, out, fx.Script+" kill n3")
		assert.Contains(t, out, fx.Script+" partition n2 "+fx.Local.Addr("n1")+" "+fx.Local.Addr("n3"))
		assert.Regexp(t, `DROP SCHEMA "strongcheck_[0-9t_z]+" CASCADE`, out)
		entries, _ := os.ReadDir(store)
		assert.Empty(t, entries, "a dry run writes no run folder")
		assertUnchanged(t, fx)
	})

	for _, tc := range []struct {
		name  string
		nodes []string
		extra []string
		code  int
		want  []string
		env   map[string]string
	}{
		{name: "password on the command line", nodes: []string{"n1=host=" + fx.Local.Addr("n1") + " user=x password=hunter2", nodes[1], nodes[2]},
			code: 254, want: []string{"must not hold a password", "STRONGCHECK_PASSWORD_<NODE>"}},
		{name: "connection refused", nodes: []string{nodes[0], nodes[1], "n3=host=" + fx.Local.Addr("n3") + " port=1 user=strongcheck sslmode=disable"},
			code: 255, want: []string{"node unreachable", "n3 (" + fx.Local.Addr("n3") + ":1 as strongcheck)", "refused"}},
		{name: "one standby", nodes: nodes[:2], code: 254, want: []string{"1 standby of n1 named (n2)", "n3 (streaming)", "at least 2 streaming standbys"}},
		{name: "standby under another name", nodes: []string{nodes[0], nodes[1], strings.Replace(nodes[2], "n3=", "n4=", 1)},
			env:  map[string]string{"STRONGCHECK_PASSWORD_N4": fx.Passwords["n3"], "STRONGCHECK_ADMIN_PASSWORD_N4": fx.AdminPasswords["n3"]},
			code: 254, want: []string{`n4 is not streaming from n1: pg_stat_replication on n1 lists only n2 (streaming), n3 (streaming), no "n4" streaming`, "app=NAME"}},
		{name: "faults not allowed", nodes: nodes, extra: append([]string{"--nemesis", "partition"}, faultArgs(fx)...), code: 254, want: []string{"allow them with --allow-faults n1"}},
		{name: "faults allowed for another cluster", nodes: nodes, extra: append([]string{"--nemesis", "partition", "--allow-faults", "prod"}, faultArgs(fx)...), code: 254,
			want: []string{"--allow-faults prod does not name this cluster (n1)"}},
		{name: "a verb without its command", nodes: nodes, extra: []string{"--nemesis", "partition,pause", "--allow-faults", "n1", "--fault-cmd", "partition=true"},
			code: 254, want: []string{"need --fault-cmd heal=..., --fault-cmd pause=..., --fault-cmd resume=..."}},
		{name: "a fault that touches other sessions", nodes: nodes, extra: []string{"--nemesis", "cancel-sync-wait", "--allow-faults", "n1"}, code: 254,
			want: []string{"not on a cluster strongcheck did not build"}},
		{name: "own promotion not allowed", nodes: nodes, extra: []string{"--failover", "auto", "--nemesis", "none"}, code: 254, want: []string{"allow it with --allow-promote"}},
		{name: "a hook that exits non-zero", nodes: nodes, extra: []string{"--sequence", "kill n3", "--allow-faults", "n1", "--time-limit", "2s",
			"--fault-cmd", "kill=echo no ssh key for {host}; exit 3", "--fault-cmd", "start=true"},
			code: 2, want: []string{"exit status 3", "no ssh key for " + fx.Local.Addr("n3")}},
		{name: "a hook that hangs", nodes: nodes, extra: []string{"--sequence", "partition n3", "--allow-faults", "n1", "--time-limit", "3s",
			"--fault-cmd", "partition=sleep 60", "--fault-cmd", "heal=" + fx.Script + " heal {node}", "--fault-cmd-timeout", "1s"},
			code: 2, want: []string{`"sleep 60" timed out after 1s; its process group was killed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			store := t.TempDir()
			t0 := time.Now()
			code, out, errOut := runCLI(existingArgs(fx, store, tc.nodes, append([]string{"--time-limit", "2s", "--nemesis", "none", "--model", "postgres", "--nemesis-interval", "1s"}, tc.extra...)...)...)
			t.Logf("exit %d in %.1fs", code, time.Since(t0).Seconds())
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
			for _, w := range tc.want {
				assert.Contains(t, out+errOut, w)
			}
			assert.NotContains(t, out+errOut, "hunter2")
			assertUnchanged(t, fx)
		})
	}

	t.Run("kill of the primary, nobody fails over", func(t *testing.T) {
		run, hist := validRun(t, fx, "--time-limit", "4s", "--nemesis-interval", "2s", "--nemesis", "kill-primary", "--failover", "none")
		for _, w := range []string{"n1: stopped answering", `"f":"restart-old-primary"`, "n1: answers as primary", "no failover (nothing promotes; strongcheck watches)"} {
			assert.Contains(t, hist, w)
		}
		assert.NotEmpty(t, run.Dir)
		assertUnchanged(t, fx)
	})

	t.Run("faults through the user's commands", func(t *testing.T) {
		run, hist := validRun(t, fx, "--time-limit", "5s", "--nemesis-interval", "1s",
			"--sequence", "kill n3; start n3; partition n2; wait 1s; heal; pause n3; resume n3")
		for _, w := range []string{"discovered: n1 primary", "n3: stopped answering", "n3: answers as standby",
			"n2 received none of it", "through SQL: n2, n3 receive WAL", "n3: connection attempts time out"} {
			assert.Contains(t, hist, w)
		}
		info, err := results.ReadTestInfo(run.TestJSON())
		require.NoError(t, err)
		assert.Equal(t, "existing", info.Backend)
		assert.Contains(t, info.Extra["topology"], "pg_stat_replication on n1: n2 streaming/quorum, n3 streaming/quorum")
		assert.Equal(t, "ANY 2 (n2, n3)", info.Settings["synchronous_standby_names"])
		assert.NotContains(t, info.Settings, "wal_sender_timeout", "no setting strongcheck did not read from the cluster")
		var res struct {
			Checks []struct{ Name, Verdict string }
		}
		b, err := os.ReadFile(filepath.Join(run.Dir, "results.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &res))
		verdicts := map[string]string{}
		for _, c := range res.Checks {
			verdicts[c.Name] = c.Verdict
		}
		assert.Equal(t, "valid", verdicts["rpo"], "%v", verdicts)
		assert.Equal(t, "valid", verdicts["faults"], "%v", verdicts)
		hits, files, err := leakcheck.Find(filepath.Dir(filepath.Dir(run.Dir)), fx.Secrets()...)
		require.NoError(t, err)
		assert.NotZero(t, files)
		assert.Empty(t, hits, "a password in the store")
		assertUnchanged(t, fx)
	})
}

// An interrupted run (Ctrl-C: its context cancelled) with a partition
// and a killed node open: the backend heals, starts and drops its schema
// on the way out, leaving the cluster as it was.
func TestIntegrationExistingInterruptedRunHeals(t *testing.T) {
	needLocal(t)
	ctx := context.Background()
	fx, err := existingtest.Up(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fx.Close(context.Background())) })
	o, err := fx.Options()
	require.NoError(t, err)
	be := harness.Backend{Name: "existing", ClientRole: o.Nodes[0].User,
		Up: func(ctx context.Context, _ cluster.Spec, dir string) (cluster.Cluster, error) {
			return existing.Up(ctx, o, dir)
		}}
	seq, err := nemesis.ParseSequence("partition n2; kill n3; wait 60s", fx.Local.Nodes())
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	store := results.Store{Root: t.TempDir()}
	tt := harness.Test{Name: "interrupted", Workloads: []string{"register"}, TimeLimit: time.Minute, Concurrency: 2,
		Sequence: seq, Interval: time.Second, Seed: 6, Store: store, Failover: nemesis.Policy{Mode: nemesis.FailoverExternal},
		Spec: cluster.Spec{Nodes: fx.Local.Nodes()}, Progress: func(line string, _ bool) {
			if strings.Contains(line, "nemesis: sequence") && strings.Contains(line, "wait") {
				cancel()
			}
		}}
	go func() {
		// The progress line names the step only on a terminal; a timer
		// covers the other case.
		select {
		case <-time.After(4 * time.Second):
			cancel()
		case <-rctx.Done():
		}
	}()
	t0 := time.Now()
	out, err := harness.Run(rctx, tt, be)
	require.NoError(t, err)
	t.Logf("interrupted run ended in %.1fs: %v", time.Since(t0).Seconds(), out.Err)
	assert.ErrorIs(t, out.Err, harness.ErrInterrupted)
	hist, err := os.ReadFile(out.Run.History())
	require.NoError(t, err)
	assert.Contains(t, string(hist), "n2 received none of it", "the partition was open")
	assert.Contains(t, string(hist), "n3: stopped answering", "n3 was down")
	assertUnchanged(t, fx)
}
