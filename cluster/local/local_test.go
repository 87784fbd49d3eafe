package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
)

// needLocal skips when this machine cannot run real clusters, saying why.
func needLocal(t testing.TB) {
	t.Helper()
	if err := Preflight(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	if _, err := FindBinaries(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
}

func tempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sc-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func upCluster(t testing.TB, spec cluster.Spec) *Cluster {
	t.Helper()
	needLocal(t)
	ctx := context.Background()
	c, err := Up(ctx, Options{Dir: tempDir(t), Subnet: AutoSubnet, Spec: spec})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
	return c
}

func connect(t testing.TB, c *Cluster, node string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString(node, false))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestIntegrationUpBothStandbysQuorum(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	rs, err := cluster.Replication(ctx, c, "n1")
	require.NoError(t, err)
	require.Len(t, rs, 2)
	for i, want := range []string{"n2", "n3"} {
		assert.Equal(t, want, rs[i].Name, "application_name is the node name")
		assert.Equal(t, "streaming", rs[i].State)
		assert.Equal(t, "quorum", rs[i].SyncState, "ANY 2 makes both standbys quorum")
	}
	states := cluster.NodeStates(ctx, c)
	roles := map[string]string{}
	for _, s := range states {
		roles[s.Node] = s.Role
	}
	assert.Equal(t, map[string]string{"n1": "primary", "n2": "standby", "n3": "standby"}, roles)
	var sync string
	require.NoError(t, connect(t, c, "n1").QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&sync))
	assert.Equal(t, "ANY 2 (n2, n3)", sync)
	// The workload user is not a superuser; the hba file admits only the subnet.
	var super bool
	require.NoError(t, connect(t, c, "n1").QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super))
	assert.False(t, super)
	hba, err := os.ReadFile(filepath.Join(c.dataDir("n1"), "pg_hba.conf"))
	require.NoError(t, err)
	assert.Contains(t, string(hba), "host replication repl "+c.Subnet()+" scram-sha-256")
	// No password in any file a report could pick up.
	for _, n := range c.Nodes() {
		auto, err := os.ReadFile(filepath.Join(c.dataDir(n), "postgresql.auto.conf"))
		require.NoError(t, err)
		assert.NotContains(t, string(auto), c.sec.Repl)
		logb, _ := os.ReadFile(c.logPath(n))
		assert.NotContains(t, string(logb), c.sec.Superuser)
	}
}

// commitLSN writes a row and returns the WAL position after its commit.
func insertRow(t testing.TB, conn *pgx.Conn, v int) string {
	t.Helper()
	ctx := context.Background()
	_, err := conn.Exec(ctx, "INSERT INTO t VALUES ($1)", v)
	require.NoError(t, err)
	var lsn string
	require.NoError(t, conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn))
	return lsn
}

func TestIntegrationAckedWriteOnBothStandbys(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	p := connect(t, c, "n1")
	_, err := p.Exec(ctx, "CREATE TABLE t (v int primary key)")
	require.NoError(t, err)
	var before string
	require.NoError(t, p.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&before))
	_, err = p.Exec(ctx, "INSERT INTO t VALUES (42)")
	require.NoError(t, err)
	// The promise: at the acknowledgement both standbys have flushed it.
	rs, err := cluster.Replication(ctx, c, "n1")
	require.NoError(t, err)
	want, _ := cluster.ParseLSN(before)
	for _, r := range rs {
		got, err := cluster.ParseLSN(r.FlushLSN)
		require.NoError(t, err)
		assert.Greater(t, got, want, "%s flushed past the commit", r.Name)
	}
	require.NoError(t, cluster.WaitReplayed(ctx, c, "n1", []string{"n2", "n3"}))
	for _, n := range []string{"n2", "n3"} {
		var v int
		require.NoError(t, connect(t, c, n).QueryRow(ctx, "SELECT v FROM t").Scan(&v))
		assert.Equal(t, 42, v, n)
	}
}

func TestIntegrationPartitionedStandbyBlocksWritesUntilHeal(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	p := connect(t, c, "n1")
	_, err := p.Exec(ctx, "CREATE TABLE t (v int primary key)")
	require.NoError(t, err)
	require.NoError(t, c.Partition(ctx, cluster.Grudge{"n1": {"n3"}}))
	done := make(chan error, 1)
	go func() {
		_, err := p.Exec(ctx, "INSERT INTO t VALUES (1)")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("write returned during the partition (err %v): ANY 2 must wait for n3", err)
	case <-time.After(1500 * time.Millisecond):
	}
	// While cut off, the write is visible nowhere but (after replay) on n2.
	var n int
	require.NoError(t, connect(t, c, "n3").QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n))
	assert.Equal(t, 0, n, "n3 is cut off")
	healed := time.Now()
	require.NoError(t, c.Heal(ctx))
	select {
	case err := <-done:
		require.NoError(t, err)
		t.Logf("blocked write completed %v after heal", time.Since(healed).Round(time.Millisecond))
	case <-time.After(30 * time.Second):
		t.Fatal("write still blocked 30 s after heal")
	}
}

func TestIntegrationKillFailoverRejoin(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	p := connect(t, c, "n1")
	_, err := p.Exec(ctx, "CREATE TABLE t (v int primary key)")
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		_, err := p.Exec(ctx, "INSERT INTO t VALUES ($1)", i)
		require.NoError(t, err)
	}
	require.NoError(t, c.Kill(ctx, "n1"))
	assert.Equal(t, cluster.Down, c.Status("n1"))
	fo, err := cluster.Failover(ctx, c, "n1", "")
	require.NoError(t, err)
	require.Contains(t, []string{"n2", "n3"}, fo.New)
	assert.Equal(t, "ANY 1 ("+other(fo.New)+")", fo.Sync)
	np := connect(t, c, fo.New)
	for i := 100; i < 150; i++ {
		_, err := np.Exec(ctx, "INSERT INTO t VALUES ($1)", i)
		require.NoError(t, err, "writes on the new primary with one standby in sync")
	}
	rj, err := cluster.RejoinOld(ctx, c, "n1", fo.New)
	require.NoError(t, err)
	assert.Equal(t, "ANY 2 ("+strings.Join(without(c.Nodes(), fo.New), ", ")+")", rj.Sync)
	for i := 150; i < 160; i++ {
		_, err := np.Exec(ctx, "INSERT INTO t VALUES ($1)", i)
		require.NoError(t, err)
	}
	standbys := without(c.Nodes(), fo.New)
	require.NoError(t, cluster.WaitStreaming(ctx, c, fo.New, standbys, true))
	require.NoError(t, cluster.WaitReplayed(ctx, c, fo.New, standbys))
	for _, s := range cluster.NodeStates(ctx, c) {
		assert.Equal(t, 2, s.Timeline, "%s on the new timeline", s.Node)
		var count, sum int
		require.NoError(t, connect(t, c, s.Node).QueryRow(ctx, "SELECT count(*), sum(v) FROM t").Scan(&count, &sum))
		assert.Equal(t, 160, count, "%s has every acknowledged row", s.Node)
		assert.Equal(t, 159*160/2, sum, s.Node)
	}
}

func other(n string) string {
	if n == "n2" {
		return "n3"
	}
	return "n2"
}

func without(ns []string, x string) []string {
	var out []string
	for _, n := range ns {
		if n != x {
			out = append(out, n)
		}
	}
	return out
}

func TestIntegrationPauseResume(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	require.NoError(t, c.Pause(ctx, "n2"))
	assert.Equal(t, cluster.Paused, c.Status("n2"))
	qctx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	_, err := pgx.Connect(qctx, c.ConnString("n2", false))
	assert.Error(t, err, "a paused node answers nothing")
	require.NoError(t, c.Resume(ctx, "n2"))
	conn := connect(t, c, "n2")
	var one int
	require.NoError(t, conn.QueryRow(ctx, "SELECT 1").Scan(&one))
}

func TestIntegrationBadSettingFailsWithLogTailAndLeavesNothing(t *testing.T) {
	needLocal(t)
	dir := tempDir(t)
	_, err := Up(context.Background(), Options{Dir: dir, Subnet: AutoSubnet,
		Spec: cluster.Spec{Settings: cluster.Settings{"no_such_setting": "1"}}})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrNodeStart)
	assert.Contains(t, err.Error(), "no_such_setting", "the node's log tail names the problem")
	assertNothingLeft(t, dir)
	assertNoOrphanNamespaces(t)
}

func TestIntegrationSubnetInUse(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	_, err := Up(context.Background(), Options{Dir: tempDir(t), Subnet: c.Subnet()})
	assert.ErrorIs(t, err, ErrSubnetInUse)
}

func TestSpecErrors(t *testing.T) {
	for _, spec := range []cluster.Spec{
		{Nodes: []string{"n1"}},
		{Nodes: []string{"n1", "n1"}},
		{Nodes: []string{"n1", "Bad-Name"}},
		{Settings: cluster.Settings{"a b": "1"}},
	} {
		_, err := Up(context.Background(), Options{Dir: t.TempDir(), Spec: spec})
		assert.ErrorIs(t, err, cluster.ErrSpec, "%+v", spec)
	}
}

// assertNothingLeft checks that no server, namespace, bridge or registry
// entry of the cluster in dir remains.
func assertNothingLeft(t *testing.T, dir string) {
	t.Helper()
	es, _ := entries()
	for _, e := range es {
		assert.NotEqual(t, dir, e.Dir, "registry entry left for %s", dir)
	}
	out, _ := exec.Command("pgrep", "-f", "-a", "postgres -D "+dir).Output()
	assert.Empty(t, strings.TrimSpace(string(out)), "postgres processes left")
}

// TestIntegrationCrashedHarnessIsSwept brings a cluster up in a child
// process, SIGKILLs the child (as a crash or kill -9 of the harness would),
// and checks that Sweep removes every server, namespace and link it left,
// and nothing else.
func TestIntegrationCrashedHarnessIsSwept(t *testing.T) {
	if dir := os.Getenv("SC_CRASH_CHILD_DIR"); dir != "" {
		c, err := Up(context.Background(), Options{Dir: dir, Subnet: AutoSubnet})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		fmt.Println("UP", c.entry.ID)
		time.Sleep(time.Minute)
		return
	}
	needLocal(t)
	keep := upCluster(t, cluster.Spec{}) // a live cluster the sweep must leave alone
	dir := tempDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIntegrationCrashedHarnessIsSwept$", "-test.v")
	cmd.Env = append(os.Environ(), "SC_CRASH_CHILD_DIR="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 4096)
	var got string
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(got, "UP ") && time.Now().Before(deadline) {
		n, err := stdout.Read(buf)
		got += string(buf[:n])
		if err != nil {
			break
		}
	}
	require.Contains(t, got, "UP ", "child output: %s", got)
	id := strings.Fields(got[strings.Index(got, "UP ")+3:])[0]
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	e, err := loadEntry(entryPath(id))
	require.NoError(t, err)
	for n, pid := range e.PIDs {
		require.True(t, isOurPostmaster(pid, e.DataDirs[n]), "%s still runs after the harness died", n)
	}
	removed, err := Sweep()
	require.NoError(t, err)
	assert.Contains(t, removed, id)
	assert.NotContains(t, removed, keep.entry.ID)
	for n, pid := range e.PIDs {
		assert.False(t, alive(pid), "%s (pid %d) left running", n, pid)
	}
	for _, ns := range e.Namespaces {
		_, err := os.Stat("/run/netns/" + ns)
		assert.True(t, errors.Is(err, os.ErrNotExist), "namespace %s left", ns)
	}
	assert.False(t, linkExists(e.Bridge), "bridge left")
	for _, p := range []string{runtimeDir(id), dataRoot(id)} {
		_, err := os.Stat(p)
		assert.True(t, errors.Is(err, os.ErrNotExist), "%s left: the passwords and data of a crashed run go with the sweep", p)
	}
	assertNothingLeft(t, dir)
	// The live cluster is untouched.
	var one int
	require.NoError(t, connect(t, keep, "n1").QueryRow(context.Background(), "SELECT 1").Scan(&one))
}

// assertNoOrphanNamespaces checks that every namespace named like ours
// belongs to a cluster in the registry (other tests may run clusters at the
// same time).
func assertNoOrphanNamespaces(t *testing.T) {
	t.Helper()
	owned := map[string]bool{}
	es, _ := entries()
	for _, e := range es {
		for _, ns := range e.Namespaces {
			owned[ns] = true
		}
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, d := range ents {
		if strings.HasPrefix(d.Name(), "sc") && !owned[d.Name()] {
			t.Errorf("namespace %s belongs to no cluster", d.Name())
		}
	}
}

func TestIntegrationShapeLinks(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	qdisc := func(node string) string {
		out, err := exec.Command("ip", "netns", "exec", c.net.nsOf[node], "tc", "qdisc", "show", "dev", "eth0").CombinedOutput()
		require.NoError(t, err, string(out))
		return string(out)
	}
	require.NoError(t, c.ShapeLinks(ctx, "1mbit"))
	for _, n := range c.Nodes() {
		assert.Contains(t, qdisc(n), "htb", n)
	}
	out, err := exec.Command("ip", "netns", "exec", c.net.nsOf["n1"], "tc", "filter", "show", "dev", "eth0").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "flowid 1:2", "peer traffic goes to the limited class")
	// Writes still commit (both standbys in sync), only slower.
	require.NoError(t, cluster.Exec(ctx, c, "n1", "CREATE TABLE t (v int)", "INSERT INTO t VALUES (1)"))
	require.NoError(t, c.ShapeLinks(ctx, ""))
	for _, n := range c.Nodes() {
		assert.NotContains(t, qdisc(n), "htb", n)
	}
	assert.ErrorIs(t, c.ShapeLinks(ctx, "fast"), cluster.ErrSpec)
}
