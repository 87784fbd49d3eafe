package k8s

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
)

// TestIntegrationKind runs the backend against a real cluster: kind from
// `make e2e-kind`, or any cluster the kubeconfig points at. It needs
// STRONGCHECK_E2E_KIND=1 and reads KUBECONFIG (and optionally
// STRONGCHECK_E2E_CONTEXT, STRONGCHECK_E2E_IMAGE); it creates and deletes
// its own namespace.
func TestIntegrationKind(t *testing.T) {
	if os.Getenv("STRONGCHECK_E2E_KIND") != "1" {
		t.Skip("set STRONGCHECK_E2E_KIND=1 (and KUBECONFIG) to run against a kind or real cluster; `make e2e-kind` does it when docker and kind are present")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	c, err := Up(ctx, Options{
		Kubeconfig: os.Getenv("KUBECONFIG"),
		Context:    os.Getenv("STRONGCHECK_E2E_CONTEXT"),
		Image:      os.Getenv("STRONGCHECK_E2E_IMAGE"),
		Namespace:  "strongcheck-e2e-" + randomString(5, lowerAlnum),
		Logf:       t.Logf,
	})
	require.NoError(t, err)
	defer func() { assert.NoError(t, c.Close(context.WithoutCancel(ctx))) }()
	t.Logf("up in %s", c.UpDuration)

	require.NoError(t, cluster.Exec(ctx, c, "n1", "CREATE TABLE e2e (k int PRIMARY KEY)", "INSERT INTO e2e VALUES (1)"))
	require.NoError(t, cluster.WaitReplayed(ctx, c, "n1", []string{"n2", "n3"}))

	// Partition n3 away, write, heal: n3 catches up.
	require.NoError(t, c.Partition(ctx, cluster.Grudge{"n3": {"n1", "n2"}}))
	require.NoError(t, cluster.SetSyncStandbys(ctx, c, "n1", "ANY 1 (n2, n3)"))
	require.NoError(t, cluster.Exec(ctx, c, "n1", "INSERT INTO e2e VALUES (2)"))
	require.NoError(t, c.Heal(ctx))
	require.NoError(t, cluster.WaitReplayed(ctx, c, "n1", []string{"n3"}))

	// Pause and resume a standby.
	require.NoError(t, c.Pause(ctx, "n2"))
	assert.Equal(t, cluster.Paused, c.Status("n2"))
	require.NoError(t, c.Resume(ctx, "n2"))

	// Crash the primary, fail over, rejoin it with pg_rewind.
	t0 := time.Now()
	require.NoError(t, c.Kill(ctx, "n1"))
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

	dir := t.TempDir()
	require.NoError(t, c.CollectLogs(ctx, dir))
	for _, n := range c.Nodes() {
		assert.FileExists(t, dir+"/"+n+".log")
	}
}
