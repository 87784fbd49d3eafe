package harness

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/existing"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/internal/existingtest"
	"github.com/strongcheck/strongcheck/internal/leakcheck"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

// spyBackend is the local backend remembering its cluster and the
// passwords it generated (read from its root-only secrets file, where
// only root and this test look).
type spyBackend struct {
	mu        sync.Mutex
	c         *local.Cluster
	passwords []string
}

func (s *spyBackend) backend(t *testing.T) Backend {
	be := backend()
	up := be.Up
	be.Up = func(ctx context.Context, spec cluster.Spec, dir string) (cluster.Cluster, error) {
		c, err := up(ctx, spec, dir)
		if err != nil {
			return c, err
		}
		lc := c.(*local.Cluster)
		b, err := os.ReadFile(lc.SecretsFile())
		require.NoError(t, err)
		var sec map[string]string
		require.NoError(t, json.Unmarshal(b, &sec))
		s.mu.Lock()
		s.c = lc
		for _, pw := range sec {
			require.GreaterOrEqual(t, len(pw), 16)
			s.passwords = append(s.passwords, pw)
		}
		s.mu.Unlock()
		return c, nil
	}
	be.PostgresVersion = func(c cluster.Cluster) string { return c.(*local.Cluster).PostgresVersion() }
	be.Leave = func(c cluster.Cluster) (string, error) {
		lc := c.(*local.Cluster)
		return "strongcheck cluster down --dir " + lc.Dir(), lc.Detach()
	}
	return be
}

func (s *spyBackend) secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.passwords...)
}

// leaks lists every file under root that holds one of passwords, and
// counts the files it read.
func leaks(t *testing.T, root string, passwords []string) (hits []string, files int) {
	t.Helper()
	require.NotEmpty(t, passwords)
	hits, files, err := leakcheck.Find(root, passwords...)
	require.NoError(t, err)
	return hits, files
}

// A real run, with a failover and a rejoin (pg_rewind logs), into a store
// of mode 0700 as `mktemp -d` makes: it works, and no file of the store
// holds any of the cluster's passwords, neither while the cluster runs nor
// after; the passwords and the data are gone with the cluster.
func TestIntegrationRunLeavesNoPasswordInTheStore(t *testing.T) {
	needLocal(t)
	store := results.Store{Root: t.TempDir()} // 0700, inside a 0700 folder
	spy := &spyBackend{}
	var midHits []string
	midFiles := 0
	tt := Test{Name: "secrets", Workloads: []string{"register", "set"}, TimeLimit: 8 * time.Second, Concurrency: 4,
		Faults: []nemesis.Fault{{Kind: nemesis.KillPrimary}}, Interval: 3 * time.Second, Seed: 7, Store: store,
		Command: []string{"strongcheck", "test", "--store", store.Dir()},
		Progress: func(line string, _ bool) {
			if strings.HasPrefix(line, "settling") { // the cluster is up, the run recorded
				midHits, midFiles = leaks(t, store.Dir(), spy.secrets())
			}
		}}
	out, err := Run(context.Background(), tt, spy.backend(t))
	require.NoError(t, err)
	require.NoError(t, out.Err)
	require.NotNil(t, out.Result)
	require.NotZero(t, midFiles, "the store was searched while the cluster ran")
	assert.Empty(t, midHits, "a password in the store while the cluster ran")

	hits, files := leaks(t, store.Dir(), spy.secrets())
	assert.Empty(t, hits, "a password in the store after the run")
	t.Logf("searched %d files of the store for %d passwords (and %d while the cluster ran)", files, len(spy.secrets()), midFiles)
	for _, p := range []string{out.Run.ReportHTML(), out.Run.History(), out.Run.NodeLog("n1"), out.Run.TestJSON()} {
		_, err := os.Stat(p)
		assert.NoError(t, err, p)
	}
	log, err := os.ReadFile(filepath.Join(filepath.Dir(out.Run.NodeLog("n1")), "n1.log"))
	require.NoError(t, err)
	require.NotEmpty(t, log)
	for _, p := range []string{spy.c.SecretsFile(), spy.c.DataDir()} {
		_, err := os.Stat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "%s left after the run", p)
	}
	info, err := results.ReadTestInfo(out.Run.TestJSON())
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9]+\.[0-9]+$`, info.PostgresVersion, "the server version, without a packager's suffix")
}

// KeepCluster leaves the cluster running after the run, reachable with the
// passwords kept outside the store, until `cluster down` of its folder.
func TestIntegrationKeepClusterLeavesItRunning(t *testing.T) {
	needLocal(t)
	store := results.Store{Root: t.TempDir()}
	spy := &spyBackend{}
	out, err := Run(context.Background(), Test{Name: "kept", Workloads: []string{"register"}, TimeLimit: 2 * time.Second,
		Concurrency: 2, Seed: 3, Store: store, KeepCluster: true}, spy.backend(t))
	require.NoError(t, err)
	require.NoError(t, out.Err)
	dir := spy.c.Dir()
	t.Cleanup(func() { _ = local.Down(context.Background(), dir) })

	a, err := local.Attach(dir)
	require.NoError(t, err, "the cluster is still there")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, a.ConnString("n1", true))
	require.NoError(t, err, "and answers")
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication").Scan(&n))
	conn.Close(ctx)
	assert.Equal(t, 2, n, "both standbys still stream")
	hits, _ := leaks(t, store.Dir(), spy.secrets())
	assert.Empty(t, hits, "a password in the store of a kept cluster")
	_, err = os.Stat(spy.c.DataDir())
	require.NoError(t, err, "a kept cluster keeps its data")

	require.NoError(t, local.Down(context.Background(), dir))
	for _, p := range []string{spy.c.SecretsFile(), spy.c.DataDir()} {
		_, err := os.Stat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "%s left after down", p)
	}
	_, err = local.Attach(dir)
	assert.ErrorIs(t, err, local.ErrNoCluster)
}

func TestKeepClusterNeedsABackendThatCan(t *testing.T) {
	tt := Test{KeepCluster: true, Store: results.Store{Root: t.TempDir()}}
	_, err := Run(context.Background(), tt, Backend{Name: "k8s", Up: func(context.Context, cluster.Spec, string) (cluster.Cluster, error) {
		t.Fatal("the cluster must not start")
		return nil, nil
	}})
	require.ErrorIs(t, err, ErrUsage)
	assert.Contains(t, err.Error(), "cannot leave its cluster running")
	entries, _ := os.ReadDir(tt.Store.Dir())
	assert.Empty(t, entries, "no run folder")
}

// A run on a cluster strongcheck did not build (the existing backend),
// attached with passwords only in the environment and faulted through
// the user's commands: no file of the store holds any of them.
func TestIntegrationExistingRunLeavesNoPasswordInTheStore(t *testing.T) {
	needLocal(t)
	ctx := context.Background()
	fx, err := existingtest.Up(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, fx.Close(context.Background())) })
	o, err := fx.Options()
	require.NoError(t, err)
	be := Backend{Name: "existing", ClientRole: o.Nodes[0].User,
		Up: func(ctx context.Context, _ cluster.Spec, dir string) (cluster.Cluster, error) {
			return existing.Up(ctx, o, dir)
		}}
	seq, err := nemesis.ParseSequence("kill n3; start n3", fx.Local.Nodes())
	require.NoError(t, err)
	store := results.Store{Root: t.TempDir()}
	out, err := Run(ctx, Test{Name: "secrets-existing", Workloads: []string{"register"}, TimeLimit: 3 * time.Second, Concurrency: 2,
		Sequence: seq, Interval: time.Second, Seed: 5, Store: store, Failover: nemesis.Policy{Mode: nemesis.FailoverExternal},
		Spec: cluster.Spec{Nodes: fx.Local.Nodes()}}, be)
	require.NoError(t, err)
	require.NoError(t, out.Err)
	require.NotNil(t, out.Result)
	hits, files := leaks(t, store.Dir(), fx.Secrets())
	assert.NotZero(t, files)
	assert.Empty(t, hits, "a password in the store")
}
