package local

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/strongcheck/strongcheck/cluster"
)

// inNetns runs fn on a thread inside network namespace ns (a name under
// /run/netns); sockets fn opens stay in ns. The thread goes back to the
// test's namespace, or dies with its goroutine if it cannot.
func inNetns(t *testing.T, ns string, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- nil
	}()
	require.NoError(t, <-done)
}

// sendTime is how long n bytes take over TCP from node from to node to,
// on a port of the test's (not PostgreSQL's).
func sendTime(t *testing.T, c *Cluster, from, to string, n int) time.Duration {
	t.Helper()
	addr := net.JoinHostPort(c.net.ipOf[to], "5433")
	var ln net.Listener
	var err error
	inNetns(t, c.net.nsOf[to], func() { ln, err = net.Listen("tcp", addr) })
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan int64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- -1
			return
		}
		defer conn.Close()
		k, _ := io.Copy(io.Discard, conn)
		got <- k
	}()
	var conn net.Conn
	inNetns(t, c.net.nsOf[from], func() { conn, err = net.DialTimeout("tcp", addr, 5*time.Second) })
	require.NoError(t, err)
	t0 := time.Now()
	_, err = conn.Write(make([]byte, n))
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	select {
	case k := <-got:
		require.Equal(t, int64(n), k)
	case <-time.After(30 * time.Second):
		t.Fatal("the bytes did not arrive")
	}
	return time.Since(t0)
}

var sentRe = regexp.MustCompile(`class htb 1:2 [^\n]*\n\s*Sent (\d+) bytes`)

// limitedBytes is what node's limited class (1:2) has sent.
func limitedBytes(t *testing.T, c *Cluster, node string) int64 {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", c.net.nsOf[node], "tc", "-s", "class", "show", "dev", "eth0").CombinedOutput()
	require.NoError(t, err, string(out))
	m := sentRe.FindSubmatch(out)
	require.NotNil(t, m, string(out))
	k, err := strconv.ParseInt(string(m[1]), 10, 64)
	require.NoError(t, err)
	return k
}

// Shaping all of a node's traffic to its peers slows any transfer;
// shaping PostgreSQL's port only (what a managed cluster does, so that
// Patroni's etcd members are not starved) slows the WAL stream and
// leaves other ports alone.
func TestIntegrationShapePortOnly(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	const n = 192 << 10 // 1.5 s at 1 Mbit/s
	require.NoError(t, c.net.shape(ctx, "1mbit", 0))
	assert.Greater(t, sendTime(t, c, "n1", "n2", n), time.Second, "every port is limited")
	require.NoError(t, c.net.shape(ctx, "1mbit", Port))
	assert.Less(t, sendTime(t, c, "n1", "n2", n), 300*time.Millisecond, "another port than PostgreSQL's is not limited")
	before := limitedBytes(t, c, "n1")
	require.NoError(t, cluster.Exec(ctx, c, "n1", "CREATE TABLE t (v text)", "INSERT INTO t SELECT repeat('x', 100000)"))
	assert.GreaterOrEqual(t, limitedBytes(t, c, "n1")-before, int64(1000), "the WAL stream to the standbys is limited")
	require.NoError(t, c.net.shape(ctx, "", 0))
}
