package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/strongcheck/strongcheck/cluster"
)

var _ cluster.Inspector = (*Cluster)(nil)

// probeTimeout bounds one reachability probe: a dropped SYN is retried by
// the kernel only after a second, so anything answered is answered sooner.
const probeTimeout = 700 * time.Millisecond

// Reachable implements cluster.Inspector: it dials to's PostgreSQL port from
// inside from's network namespace.
func (c *Cluster) Reachable(ctx context.Context, from, to string) (bool, error) {
	ns, ok := c.net.nsOf[from]
	if !ok {
		return false, fmt.Errorf("%w: no node %q", cluster.ErrSpec, from)
	}
	ip, ok := c.net.ipOf[to]
	if !ok {
		return false, fmt.Errorf("%w: no node %q", cluster.ErrSpec, to)
	}
	return dialFromNamespace(ctx, "/run/netns/"+ns, net.JoinHostPort(ip, strconv.Itoa(Port)))
}

// dialFromNamespace opens a TCP connection to addr from the network
// namespace at nsPath, on a thread of its own that joins the namespace for
// the socket's creation and leaves it afterwards. A refusal counts as
// reachable, a timeout as not.
func dialFromNamespace(ctx context.Context, nsPath, addr string) (bool, error) {
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		restored := false
		defer func() {
			// A thread that could not go back to its namespace dies with
			// this goroutine rather than serve another one.
			if restored {
				runtime.UnlockOSThread()
			}
		}()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: fmt.Errorf("probe: own namespace: %w", err)}
			restored = true
			return
		}
		defer orig.Close()
		target, err := os.Open(nsPath)
		if err != nil {
			done <- result{err: fmt.Errorf("probe: %w", err)}
			restored = true
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("probe: enter %s: %w", nsPath, err)}
			restored = true
			return
		}
		d := net.Dialer{Timeout: probeTimeout}
		conn, derr := d.DialContext(ctx, "tcp", addr)
		if conn != nil {
			conn.Close()
		}
		restored = unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil
		switch {
		case derr == nil, errors.Is(derr, syscall.ECONNREFUSED):
			done <- result{ok: true}
		case ctx.Err() != nil:
			done <- result{err: ctx.Err()}
		default:
			var ne net.Error
			if errors.As(derr, &ne) && ne.Timeout() {
				done <- result{ok: false}
				return
			}
			// Unreachable host or network: the path is cut as well.
			if errors.Is(derr, syscall.EHOSTUNREACH) || errors.Is(derr, syscall.ENETUNREACH) || errors.Is(derr, syscall.EPERM) {
				done <- result{ok: false}
				return
			}
			done <- result{err: fmt.Errorf("probe %s from %s: %w", addr, nsPath, derr)}
		}
	}()
	r := <-done
	return r.ok, r.err
}

// Processes implements cluster.Inspector from /proc: the node's postmaster
// (as this process started it) and its children.
func (c *Cluster) Processes(ctx context.Context, node string) (cluster.ProcessState, error) {
	s, err := c.server(node)
	if err != nil {
		return cluster.ProcessState{}, err
	}
	var ps cluster.ProcessState
	pid := s.pid()
	if pid == 0 || !s.running() {
		return ps, nil // never started, or exited and reaped (its PID may be reused)
	}
	count := func(p int) bool {
		switch procState(p) {
		case 0, 'Z', 'X':
			return false
		case 'T', 't':
			ps.Stopped++
		default:
			ps.Running++
		}
		return true
	}
	ps.Postmaster = count(pid)
	if ps.Postmaster {
		for _, k := range children(pid) {
			count(k)
		}
	}
	return ps, nil
}

// procState is the state letter of pid in /proc, 0 when it does not exist.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}
