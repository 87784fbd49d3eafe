package k8s

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// echoTunnels is a fake port-forward: each tunnel is a fresh loopback
// listener that answers "<tunnel number>:<line>"; drop ends the current
// tunnel the way client-go ends one after an error at the pod's end.
type echoTunnels struct {
	n    atomic.Int32
	drop chan struct{}
	// mute makes tunnel 1 hang: it accepts connections and never answers
	// nor ends, as client-go's did when its streams timed out.
	mute bool
}

func (e *echoTunnels) forward(ctx context.Context, pod string, ready chan<- int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	id := e.n.Add(1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if e.mute && id == 1 {
					<-ctx.Done()
					return
				}
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "%d:%s", id, line)
				}
			}()
		}
	}()
	ready <- ln.Addr().(*net.TCPAddr).Port
	select {
	case <-ctx.Done():
		return nil
	case <-e.drop:
		return errors.New("lost connection to pod")
	}
}

func roundTrip(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(3*time.Second)))
	_, err = fmt.Fprintf(c, "ping\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	return line
}

func TestProxyKeepsItsPortAcrossDroppedTunnels(t *testing.T) {
	e := &echoTunnels{drop: make(chan struct{})}
	p, err := startProxy(context.Background(), "pg-n1", e.forward, 2*time.Second)
	require.NoError(t, err)
	host, port := p.addr()
	addr := net.JoinHostPort(host, fmt.Sprint(port))
	assert.Equal(t, "127.0.0.1", host)
	assert.Equal(t, "1:ping\n", roundTrip(t, addr))

	e.drop <- struct{}{} // the tunnel dies
	// A connection made before the proxy sees the death may still reach
	// the dying tunnel (as with client-go's); wait for the second one.
	require.Eventually(t, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.gen == 2 && p.port != 0
	}, 3*time.Second, 5*time.Millisecond, "the proxy opens a new tunnel")
	assert.Equal(t, "2:ping\n", roundTrip(t, addr), "same local port, new tunnel")

	p.close()
	_, err = net.DialTimeout("tcp", addr, 200*time.Millisecond)
	assert.Error(t, err, "closed proxy still listening")
}

func TestProxyReportsWhyTheTunnelFailed(t *testing.T) {
	fwd := func(ctx context.Context, pod string, ready chan<- int) error {
		return errors.New(`pods "pg-n1" is forbidden: User "ci" cannot create resource "pods/portforward"`)
	}
	_, err := startProxy(context.Background(), "pg-n1", fwd, 300*time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "port-forward to pod pg-n1")
	assert.Contains(t, err.Error(), "pods/portforward")
}

// TestConnStringThroughPortForward: a connection through port-forward may
// first wait for the proxy's tunnel (dialWait) and then for a stream
// through the API server and kubelet; its connect timeout leaves room for
// both, where a pod IP keeps the short one.
func TestConnStringThroughPortForward(t *testing.T) {
	e := &echoTunnels{drop: make(chan struct{})}
	opts := testOptions(newFake(nil), &fakeExec{})
	opts.Access, opts.forward = PortForward, e.forward
	c := upFake(t, opts)
	defer c.Close(context.Background())
	dsn := c.ConnString("n1", false)
	assert.Contains(t, dsn, "host=127.0.0.1 ")
	assert.Contains(t, dsn, fmt.Sprintf(" connect_timeout=%d", connectTimeoutForward))
	assert.Greater(t, time.Duration(connectTimeoutForward)*time.Second, dialWait)
	assert.Equal(t, "1:ping\n", roundTrip(t, strings.Fields(strings.TrimPrefix(dsn, "host="))[0]+":"+strings.TrimPrefix(strings.Fields(dsn)[1], "port=")))
}

// TestClientGoErrorsGoToLogf: client-go's unreturnable errors (its
// port-forward's, while the nemesis has killed a node) reach the cluster's
// Logf instead of stderr, and nothing after Close.
func TestClientGoErrorsGoToLogf(t *testing.T) {
	var mu sync.Mutex
	var got []string
	opts := testOptions(newFake(nil), &fakeExec{})
	opts.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf(format, args...))
	}
	c := upFake(t, opts)
	utilruntime.HandleError(errors.New("error forwarding port 5432: connection refused"))
	require.NoError(t, c.Close(context.Background()))
	utilruntime.HandleError(errors.New("after close"))
	mu.Lock()
	defer mu.Unlock()
	var seen []string
	for _, l := range got {
		if strings.Contains(l, "client-go") {
			seen = append(seen, l)
		}
	}
	require.Len(t, seen, 1, "%q", got)
	assert.Contains(t, seen[0], "connection refused")
}

// TestProxyReplacesAHungTunnel: a connection that gets nothing from the
// pod ends the tunnel it went through, and the next one gets a new tunnel.
func TestProxyReplacesAHungTunnel(t *testing.T) {
	e := &echoTunnels{drop: make(chan struct{}), mute: true}
	p, err := startProxy(context.Background(), "pg-n1", e.forward, 2*time.Second)
	require.NoError(t, err)
	defer p.close()
	host, port := p.addr()
	addr := net.JoinHostPort(host, fmt.Sprint(port))

	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	_, err = fmt.Fprintf(c, "ping\n")
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = bufio.NewReader(c).ReadString('\n')
	require.Error(t, err, "the hung tunnel answers nothing")
	c.Close() // the client gives up, as pgx does at its connect timeout

	require.Eventually(t, func() bool { return e.n.Load() >= 2 }, 5*time.Second, 10*time.Millisecond, "a new tunnel is opened")
	assert.Equal(t, "2:ping\n", roundTrip(t, addr))
}
