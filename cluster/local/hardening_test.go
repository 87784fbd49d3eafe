package local

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/internal/leakcheck"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		out, version string
		major        int
	}{
		{"postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", "15.18", 15},
		{"postgres (PostgreSQL) 16.4\n", "16.4", 16},
		{"postgres (PostgreSQL) 17beta1", "17beta1", 17},
		{"postgres (PostgreSQL) 18devel", "18devel", 18},
		{"postgres (PostgreSQL) 13.16 (Ubuntu 13.16-1.pgdg22.04+1)", "13.16", 13},
		{"postgres (PostgreSQL) 9.6.24", "9.6.24", 9},
	} {
		v, major, err := parseVersion(tc.out)
		require.NoError(t, err, tc.out)
		assert.Equal(t, tc.version, v, tc.out)
		assert.Equal(t, tc.major, major, tc.out)
	}
	for _, bad := range []string{"", "postgres", "postgres (PostgreSQL)", "postgres (PostgreSQL) (Debian 15)", "pg_ctl 15.18"} {
		_, _, err := parseVersion(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"a1b2c3", "000000"} {
		assert.True(t, validID(id), id)
	}
	for _, id := range []string{"", "..", "../../etc", "a1b2c", "A1B2C3", "a1b2c3/..", "a1b2c3d"} {
		assert.False(t, validID(id), id)
	}
	assert.NoError(t, removePrivateDirs("../../etc"), "an id not of ours is never a path")
}

func assertMode(t *testing.T, path string, mode os.FileMode, uid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err, path)
	assert.Equal(t, mode, fi.Mode().Perm(), path)
	assert.Equal(t, uid, fi.Sys().(*syscall.Stat_t).Uid, "%s owner", path)
}

// The cluster folder may be private to root (mktemp -d makes 0700
// folders): the servers never open it. Passwords and data live in folders
// of the cluster's own, 0700 and owned by postgres, and go with Close.
func TestIntegrationSecretsAndDataOutsideTheClusterFolder(t *testing.T) {
	needLocal(t)
	parent := t.TempDir() // 0700, as is the folder inside it
	dir := filepath.Join(parent, "cluster")
	require.NoError(t, os.Mkdir(dir, 0o700))
	c, err := Up(context.Background(), Options{Dir: dir, Subnet: AutoSubnet})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			assert.NoError(t, c.Close(context.Background()))
		}
	})
	u, err := lookupPGUser()
	require.NoError(t, err)
	id := c.net.id
	assertMode(t, RegistryDir, 0o711, 0)
	assertMode(t, runtimeDir(id), 0o700, u.uid)
	assertMode(t, secretsPath(id), 0o600, 0)
	assertMode(t, passfilePath(id), 0o600, u.uid)
	assertMode(t, dataRoot(id), 0o700, u.uid)
	assert.Equal(t, secretsPath(id), c.SecretsFile())
	for _, n := range c.Nodes() {
		assert.Equal(t, filepath.Join(dataRoot(id), n), c.dataDir(n))
		assertMode(t, c.dataDir(n), 0o700, u.uid)
	}
	passwords := []string{c.sec.Superuser, c.sec.Repl, c.sec.User}
	hits, files, err := leakcheck.Find(parent, passwords...)
	require.NoError(t, err)
	assert.NotZero(t, files)
	assert.Empty(t, hits, "a password in the cluster folder")
	_, err = os.Stat(filepath.Join(dir, "secrets.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	// Attach finds the passwords where Up put them.
	a, err := Attach(dir)
	require.NoError(t, err)
	assert.Equal(t, c.ConnString("n2", true), a.ConnString("n2", true))

	require.NoError(t, c.Close(context.Background()))
	closed = true
	for _, p := range []string{runtimeDir(id), dataRoot(id), entryPath(id), filepath.Join(dir, "cluster.json")} {
		_, err := os.Stat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "%s left after Close", p)
	}
	_, err = os.Stat(filepath.Join(dir, "logs", "n1.log"))
	assert.NoError(t, err, "logs stay")
	_, err = Attach(dir)
	assert.ErrorIs(t, err, ErrNoCluster)
}

// serverProcs identifies every process of the cluster's servers now:
// postmasters and their children.
func serverProcs(t *testing.T, e *entry) []proc {
	t.Helper()
	var out []proc
	for n, pid := range e.PIDs {
		require.True(t, isOurPostmaster(pid, e.DataDirs[n]), "%s runs", n)
		out = append(out, procsOf(append(children(pid), pid))...)
	}
	require.Greater(t, len(out), len(e.PIDs), "postmasters and their children")
	return out
}

func present(ps []proc) []int {
	var left []int
	for _, p := range ps {
		if p.present() {
			left = append(left, p.pid)
		}
	}
	return left
}

// `cluster down` of a cluster another process left up returns only once
// every one of its server processes has left the process table, zombies
// included (their parent, init, reaps them in its own time).
func TestIntegrationDownWaitsForEveryProcess(t *testing.T) {
	if dir := os.Getenv("SC_DETACHED_CHILD_DIR"); dir != "" {
		c, err := Up(context.Background(), Options{Dir: dir, Subnet: AutoSubnet, Detached: true})
		if err == nil {
			err = c.Detach()
		}
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(3)
		}
		fmt.Println("UP", c.net.id)
		return
	}
	needLocal(t)
	dir := tempDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestIntegrationDownWaitsForEveryProcess$")
	cmd.Env = append(os.Environ(), "SC_DETACHED_CHILD_DIR="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	require.Contains(t, string(out), "UP ")
	id := strings.Fields(string(out)[strings.Index(string(out), "UP ")+3:])[0]
	e, err := loadEntry(entryPath(id))
	require.NoError(t, err)
	t.Cleanup(func() { _ = Down(context.Background(), dir) })
	procs := serverProcs(t, e)

	t0 := time.Now()
	require.NoError(t, Down(context.Background(), dir))
	took := time.Since(t0)
	assert.Empty(t, present(procs), "server processes still in the process table when Down returned")
	t.Logf("down of %d server processes took %v", len(procs), took.Round(time.Millisecond))
	for _, p := range []string{runtimeDir(id), dataRoot(id), entryPath(id), filepath.Join(dir, "cluster.json")} {
		_, err := os.Stat(p)
		assert.ErrorIs(t, err, os.ErrNotExist, "%s left after Down", p)
	}
}

// Close returns once every process its servers ran has left the process
// table: also the children of a postmaster killed just before, which
// belong to init by then.
func TestIntegrationCloseWaitsForEveryProcess(t *testing.T) {
	needLocal(t)
	c, err := Up(context.Background(), Options{Dir: tempDir(t), Subnet: AutoSubnet, Spec: cluster.Spec{}})
	require.NoError(t, err)
	procs := serverProcs(t, c.entry)
	require.NoError(t, c.Kill(context.Background(), "n1"))
	require.NoError(t, c.Close(context.Background()))
	assert.Empty(t, present(procs), "server processes still in the process table when Close returned")
}

// The registry folder is no secret, its entries are: postgres may pass
// through it to its runtime folder, not read an entry.
func TestIntegrationRegistryEntriesRootOnly(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	assertMode(t, entryPath(c.net.id), 0o600, 0)
	b, err := os.ReadFile(entryPath(c.net.id))
	require.NoError(t, err)
	var e entry
	require.NoError(t, json.Unmarshal(b, &e))
	assert.NotContains(t, string(b), c.sec.Superuser)
}

// What an older strongcheck left in a cluster folder goes; a data folder
// of the user's own in the same --dir stays.
func TestRemoveOldLayout(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string) {
		p := filepath.Join(dir, rel)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	}
	write("secrets.json")
	write("data/pgpass")
	write("data/n1/PG_VERSION")
	write("data/n1/base/1/1259")
	write("data/mine/notes.txt")
	write("logs/n1.log")
	require.NoError(t, removeOldLayout(dir))
	for rel, want := range map[string]bool{"secrets.json": false, "data/pgpass": false, "data/n1": false,
		"data/mine/notes.txt": true, "logs/n1.log": true} {
		_, err := os.Stat(filepath.Join(dir, rel))
		assert.Equal(t, want, err == nil, rel)
	}
	empty := t.TempDir()
	require.NoError(t, removeOldLayout(empty), "a folder with nothing old")
}
