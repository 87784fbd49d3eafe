package k8s

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/strongcheck/strongcheck/cluster"
)

// TestIntegrationKind runs the backend against a real cluster: kind from
// `make e2e-kind`, or any cluster the kubeconfig points at. It needs
// STRONGCHECK_E2E_KIND=1 and reads KUBECONFIG (and optionally the
// variables e2eOptions reads); it creates and deletes its own namespace.
func TestIntegrationKind(t *testing.T) {
	if os.Getenv("STRONGCHECK_E2E_KIND") != "1" {
		t.Skip("set STRONGCHECK_E2E_KIND=1 (and KUBECONFIG) to run against a kind or real cluster; `make e2e-kind` does it when docker and kind are present")
	}
	runE2E(t)
}

// TestIntegrationK8sLocal is the same test on the single-node Kubernetes
// that `make e2e-k8s` assembles on this machine (scripts/k8s-local), with
// the images it builds from Debian's packages. It needs
// STRONGCHECK_E2E_K8S_LOCAL=1 and the variables e2eOptions reads.
func TestIntegrationK8sLocal(t *testing.T) {
	if os.Getenv("STRONGCHECK_E2E_K8S_LOCAL") != "1" {
		t.Skip("set STRONGCHECK_E2E_K8S_LOCAL=1; `make e2e-k8s` does it after bringing up its local Kubernetes")
	}
	runE2E(t)
}

// e2eOptions reads the cluster and images from the environment: KUBECONFIG,
// STRONGCHECK_E2E_CONTEXT, STRONGCHECK_E2E_IMAGE, STRONGCHECK_E2E_SIDECAR_IMAGE,
// STRONGCHECK_E2E_POSTGRES_UID, STRONGCHECK_E2E_PULL_POLICY (each optional).
func e2eOptions(t *testing.T) Options {
	var uid int64
	if s := os.Getenv("STRONGCHECK_E2E_POSTGRES_UID"); s != "" {
		var err error
		uid, err = strconv.ParseInt(s, 10, 64)
		require.NoError(t, err, "STRONGCHECK_E2E_POSTGRES_UID")
	}
	return Options{
		Kubeconfig:   os.Getenv("KUBECONFIG"),
		Context:      os.Getenv("STRONGCHECK_E2E_CONTEXT"),
		Image:        os.Getenv("STRONGCHECK_E2E_IMAGE"),
		SidecarImage: os.Getenv("STRONGCHECK_E2E_SIDECAR_IMAGE"),
		PostgresUID:  uid,
		PullPolicy:   corev1.PullPolicy(os.Getenv("STRONGCHECK_E2E_PULL_POLICY")),
		Namespace:    "strongcheck-e2e-" + randomString(5, lowerAlnum),
		Logf:         t.Logf,
	}
}

// runE2E is the assertions both tests share: partition (and what Reachable
// sees of it), pause (and what Processes sees), a stop of one backend,
// kill, failover and rewind.
func runE2E(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	c, err := Up(ctx, e2eOptions(t))
	require.NoError(t, err)
	defer func() { assert.NoError(t, c.Close(context.WithoutCancel(ctx))) }()
	t.Logf("up in %s", c.UpDuration)

	require.NoError(t, cluster.Exec(ctx, c, "n1", "CREATE TABLE e2e (k int PRIMARY KEY)", "INSERT INTO e2e VALUES (1)"))
	require.NoError(t, cluster.WaitReplayed(ctx, c, "n1", []string{"n2", "n3"}))
	reach := func(from, to string) bool {
		ok, err := c.Reachable(ctx, from, to)
		require.NoError(t, err, "reachable %s -> %s", from, to)
		return ok
	}
	for _, p := range [][2]string{{"n1", "n2"}, {"n2", "n1"}, {"n3", "n1"}, {"n1", "n3"}} {
		assert.True(t, reach(p[0], p[1]), "%s -> %s before the partition", p[0], p[1])
	}

	// Partition n3 away, write, heal: n3 catches up.
	require.NoError(t, c.Partition(ctx, cluster.Grudge{"n3": {"n1", "n2"}}))
	for _, p := range [][2]string{{"n3", "n1"}, {"n1", "n3"}, {"n3", "n2"}, {"n2", "n3"}} {
		assert.False(t, reach(p[0], p[1]), "%s -> %s while n3 is partitioned", p[0], p[1])
	}
	assert.True(t, reach("n1", "n2"), "n1 -> n2 is not cut")
	require.NoError(t, cluster.SetSyncStandbys(ctx, c, "n1", "ANY 1 (n2, n3)"))
	require.NoError(t, cluster.Exec(ctx, c, "n1", "INSERT INTO e2e VALUES (2)"))
	require.NoError(t, c.Heal(ctx))
	assert.True(t, reach("n3", "n1"), "n3 -> n1 after healing")
	assert.True(t, reach("n1", "n3"), "n1 -> n3 after healing")
	require.NoError(t, cluster.WaitReplayed(ctx, c, "n1", []string{"n3"}))

	// Pause and resume a standby: every server process stops, then runs.
	ps, err := c.Processes(ctx, "n2")
	require.NoError(t, err)
	assert.True(t, ps.Postmaster && ps.Running > 1 && ps.Stopped == 0, "n2 before the pause: %+v", ps)
	require.NoError(t, c.Pause(ctx, "n2"))
	assert.Equal(t, cluster.Paused, c.Status("n2"))
	ps, err = c.Processes(ctx, "n2")
	require.NoError(t, err)
	assert.True(t, ps.Postmaster && ps.Running == 0 && ps.Stopped > 1, "n2 paused: %+v", ps)
	require.NoError(t, c.Resume(ctx, "n2"))
	ps, err = c.Processes(ctx, "n2")
	require.NoError(t, err)
	assert.True(t, ps.Postmaster && ps.Stopped == 0, "n2 resumed: %+v", ps)

	// Stop one backend of n1 (stall-commit's primitive) and continue it:
	// only that process stops, and a PID that is not a child of the
	// postmaster is left alone.
	bconn, err := pgx.Connect(ctx, c.ConnString("n1", true))
	require.NoError(t, err)
	var bpid int
	require.NoError(t, bconn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&bpid))
	stopped, err := c.PauseBackends(ctx, "n1", []int{bpid, 1})
	require.NoError(t, err)
	assert.Equal(t, []int{bpid}, stopped, "only the backend is signalled")
	ps, err = c.Processes(ctx, "n1")
	require.NoError(t, err)
	assert.Equal(t, 1, ps.Stopped, "n1 with one backend stopped: %+v", ps)
	qctx, qcancel := context.WithTimeout(ctx, 500*time.Millisecond)
	assert.Error(t, bconn.Ping(qctx), "a stopped backend does not answer")
	qcancel()
	require.NoError(t, c.ResumeBackends(ctx, "n1", stopped))
	ps, err = c.Processes(ctx, "n1")
	require.NoError(t, err)
	assert.Zero(t, ps.Stopped, "n1 after the backend continued: %+v", ps)
	bconn.Close(ctx)

	// Crash the primary, fail over, rejoin it with pg_rewind.
	t0 := time.Now()
	require.NoError(t, c.Kill(ctx, "n1"))
	ps, err = c.Processes(ctx, "n1")
	require.NoError(t, err)
	assert.Equal(t, ProcessState{}, ps, "n1 killed: no postmaster, no server process")
	assert.True(t, reach("n2", "n1"), "a killed node's pod still answers (refused): the network is not cut")
	fo, err := cluster.Failover(ctx, c, "n1", "")
	require.NoError(t, err)
	t.Logf("failover to %s in %s (kill at %s)", fo.New, fo.Durations["total"], time.Since(t0))
	require.NoError(t, cluster.Exec(ctx, c, fo.New, "INSERT INTO e2e VALUES (3)"))
	rj, err := cluster.RejoinOld(ctx, c, "n1", fo.New)
	require.NoError(t, err)
	t.Logf("rejoin in %s", rj.Durations["total"])
	prim, err := cluster.FindPrimary(ctx, c)
	require.NoError(t, err)
	assert.Equal(t, fo.New, prim)
	require.NoError(t, cluster.WaitReplayed(ctx, c, prim, []string{"n1"}))
	conn, err := pgx.Connect(ctx, c.ConnString("n1", true))
	require.NoError(t, err)
	var rows int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM e2e").Scan(&rows))
	conn.Close(ctx)
	assert.Equal(t, 3, rows, "the rejoined node has every row")

	dir := t.TempDir()
	require.NoError(t, c.CollectLogs(ctx, dir))
	for _, n := range c.Nodes() {
		assert.FileExists(t, dir+"/"+n+".log")
	}
}
