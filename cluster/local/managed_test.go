package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"

	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
)

// needManager skips when the manager's packages are missing, saying which
// (scripts/install-deps.sh --managers installs them).
func needManager(t *testing.T, name string) {
	t.Helper()
	needLocal(t)
	if err := ManagerPreflight(name); err != nil {
		t.Skipf("%s unavailable: %v", name, err)
	}
}

func upManaged(t *testing.T, name string, conf map[string]string) *ManagedCluster {
	t.Helper()
	needManager(t, name)
	ctx := context.Background()
	spec := cluster.Spec{Manager: cluster.ManagerSpec{Name: name, Conf: conf}}
	m, err := UpManaged(ctx, Options{Dir: tempDir(t), Subnet: AutoSubnet, Spec: spec, Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() {
		var pids []int
		for _, as := range m.agents {
			for _, a := range as {
				pids = append(pids, descendants(a.pid())...)
				pids = append(pids, a.pid())
			}
		}
		assert.NoError(t, m.Close(context.Background()))
		assert.NoError(t, waitVanished(pids, time.Second), "every manager process is gone after Close")
	})
	return m
}

// TestIntegrationManagedKillPrimary brings each manager up, crashes the
// primary node, waits for the manager's failover, restarts the old node
// and waits until the manager has rejoined it. The two managers run side
// by side, each cluster in its own namespaces and subnet: the test mostly
// waits for the managers' timeouts (33 s each when run one after the
// other), and no client runs.
//
// Patroni runs with dcs=etcd (the zoo's sound configuration): its leader
// key is read through etcd's v2 API, so the test fails if Patroni were
// still on the v3 API.
func TestIntegrationManagedKillPrimary(t *testing.T) {
	confs := map[string]map[string]string{cluster.ManagerPatroni: {"dcs": "etcd"}}
	for _, name := range []string{cluster.ManagerPatroni, cluster.ManagerAutoFailover} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			m := upManaged(t, name, confs[name])
			ctx := context.Background()
			v, err := m.View(ctx)
			require.NoError(t, err)
			require.Equal(t, "n1", v.Primary, "the spec's first node is the initial primary: %s", v)
			if name == cluster.ManagerPatroni {
				assert.Equal(t, "n1", v2Leader(t, m, "n2"), "Patroni keeps its leader key in etcd's v2 store")
			}
			conn := connect(t, m.Cluster, "n1")
			_, err = conn.Exec(ctx, "CREATE TABLE t (v int primary key)")
			require.NoError(t, err)
			_, err = conn.Exec(ctx, "INSERT INTO t VALUES (1)")
			require.NoError(t, err, "a synchronous commit is acknowledged")

			t0 := time.Now()
			require.NoError(t, m.Kill(ctx, "n1"))
			assert.Equal(t, cluster.Down, m.Status("n1"))
			fctx, cancel := context.WithTimeout(ctx, 90*time.Second)
			defer cancel()
			nv, err := m.AwaitFailover(fctx, "n1")
			require.NoError(t, err)
			t.Logf("%s promoted %s %.1fs after the kill: %s", name, nv.Primary, time.Since(t0).Seconds(), nv)
			assert.NotEqual(t, "n1", nv.Primary)
			if name == cluster.ManagerPatroni {
				assert.Equal(t, nv.Primary, v2Leader(t, m, nv.Primary))
			}

			require.NoError(t, m.Start(ctx, "n1"))
			hctx, cancel2 := context.WithTimeout(ctx, 90*time.Second)
			defer cancel2()
			hv, err := m.AwaitHealthy(hctx)
			require.NoError(t, err, "the manager rejoins the old primary")
			t.Logf("healthy again %.1fs after the kill: %s", time.Since(t0).Seconds(), hv)
			var got int
			require.NoError(t, connect(t, m.Cluster, "n1").QueryRow(ctx, "SELECT v FROM t").Scan(&got))
			assert.Equal(t, 1, got, "the acknowledged row survived on the rejoined node")
		})
	}
}

// TestIntegrationManagedSweep leaves a managed cluster as a killed
// harness would and checks that Sweep ends its agents and servers.
func TestIntegrationManagedSweep(t *testing.T) {
	needManager(t, cluster.ManagerPatroni)
	ctx := context.Background()
	spec := cluster.Spec{Manager: cluster.ManagerSpec{Name: cluster.ManagerPatroni}}
	m, err := UpManaged(ctx, Options{Dir: tempDir(t), Subnet: AutoSubnet, Spec: spec})
	require.NoError(t, err)
	var pids []int
	for _, as := range m.agents {
		for _, a := range as {
			pids = append(pids, a.pid())
			pids = append(pids, descendants(a.pid())...)
		}
	}
	id := m.entry.ID
	// The harness "dies": it lets go of its lock, nothing is torn down.
	m.lock.release()
	removed, err := Sweep()
	require.NoError(t, err)
	assert.Contains(t, removed, id)
	assert.NoError(t, waitVanished(pids, 5*time.Second), "swept: every agent, etcd member and postmaster")
	_, err = os.Stat(entryPath(id))
	assert.True(t, os.IsNotExist(err))
	for _, ns := range m.net.namespaces() {
		_, err := os.Stat("/run/netns/" + ns)
		assert.True(t, os.IsNotExist(err), ns)
	}

}

// v2Leader reads Patroni's leader key through the v2 API of node's etcd
// member.
func v2Leader(t *testing.T, m *ManagedCluster, node string) string {
	t.Helper()
	url := fmt.Sprintf("http://%s:%d/v2/keys/strongcheck/strongcheck-%s/leader", m.net.ipOf[node], etcdClientPort, m.entry.ID)
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Node struct {
			Value string `json:"value"`
		} `json:"node"`
	}
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Node.Value
}
