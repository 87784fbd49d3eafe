package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// forwardFunc opens one tunnel to port 5432 of pod, sends the local port it
// listens on to ready, and blocks until the tunnel ends (nil when ctx ends).
type forwardFunc func(ctx context.Context, pod string, ready chan<- int) error

// clientGoForward is the real tunnel: client-go's port-forward over
// WebSocket (Kubernetes 1.30+), SPDY when the upgrade is refused.
func clientGoForward(cs kubernetes.Interface, cfg *rest.Config, namespace string) forwardFunc {
	return func(ctx context.Context, pod string, ready chan<- int) error {
		u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(namespace).Name(pod).SubResource("portforward").URL()
		transport, upgrader, err := spdy.RoundTripperFor(cfg)
		if err != nil {
			return err
		}
		var dialer httpstream.Dialer = spdy.NewDialer(upgrader, &http.Client{Transport: transport}, "POST", u)
		if ws, err := portforward.NewSPDYOverWebsocketDialer(u, cfg); err == nil {
			dialer = portforward.NewFallbackDialer(ws, dialer, func(err error) bool {
				return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
			})
		}
		readyCh := make(chan struct{})
		pf, err := portforward.NewOnAddressesWithContext(ctx, dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(pgPort)}, readyCh, io.Discard, io.Discard)
		if err != nil {
			return err
		}
		errCh := make(chan error, 1)
		go func() { errCh <- pf.ForwardPorts() }()
		select {
		case <-readyCh:
			ports, err := pf.GetPorts()
			if err != nil || len(ports) == 0 {
				return fmt.Errorf("port-forward ready without a port: %v", err)
			}
			ready <- int(ports[0].Local)
		case err := <-errCh:
			return err
		}
		return <-errCh
	}
}

// proxy gives one node a local address that stays the same for the whole
// run. client-go's port-forward ends its whole tunnel when one connection
// fails at the pod's end (e.g. while the nemesis has killed postgres), so
// the proxy re-opens tunnels as they end and hands each accepted connection
// to the current one; a connection that arrives while a tunnel is being
// re-opened waits for it (up to dialWait).
//
// A tunnel can also hang without ending: on a loaded machine client-go's
// port-forward kept a tunnel whose new streams all timed out ("Error
// creating error stream: Timeout occurred"), and every connection to that
// node failed for the rest of the run. So a connection that ends without a
// single byte from the pod (a hung tunnel, a refused or frozen server)
// ends the tunnel it used, and the next connection gets a new one.
type proxy struct {
	pod     string
	ln      net.Listener
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	port    int    // the current tunnel's local port, 0 while none
	gen     int    // the current tunnel's number
	drop    func() // ends the current tunnel
	lastErr error  // why the last tunnel ended
	changed chan struct{}
}

const dialWait = 5 * time.Second

// startProxy listens on 127.0.0.1 and keeps tunnels to pod open until
// close. It returns once the first tunnel is up, or with the reason it
// could not be opened within timeout.
func startProxy(ctx context.Context, pod string, fwd forwardFunc, timeout time.Duration) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for port-forward to %s: %w", pod, err)
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &proxy{pod: pod, ln: ln, cancel: cancel, changed: make(chan struct{})}
	p.wg.Add(2)
	go p.keepTunnel(pctx, fwd)
	go p.accept(pctx)
	wctx, wcancel := context.WithTimeout(ctx, timeout)
	defer wcancel()
	if _, _, err := p.tunnelPort(wctx); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// addr is the stable local address (host, port).
func (p *proxy) addr() (string, int) {
	a := p.ln.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

func (p *proxy) set(port int, drop func(), err error) {
	p.mu.Lock()
	p.port = port
	if port != 0 {
		p.gen++
		p.drop = drop
	}
	if err != nil {
		p.lastErr = err
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// errNoAnswer is why a tunnel was ended after a connection through it got
// nothing from the pod.
var errNoAnswer = errors.New("a connection through the tunnel got no answer from the pod")

// dropTunnel ends tunnel gen if it is still the current one.
func (p *proxy) dropTunnel(gen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen == gen && p.port != 0 && p.drop != nil {
		p.lastErr = errNoAnswer
		p.drop()
	}
}

// keepTunnel opens tunnels one after another until ctx ends.
func (p *proxy) keepTunnel(ctx context.Context, fwd forwardFunc) {
	defer p.wg.Done()
	for ctx.Err() == nil {
		ready := make(chan int, 1)
		done := make(chan error, 1)
		tctx, drop := context.WithCancel(ctx)
		go func() { done <- fwd(tctx, p.pod, ready) }()
		var err error
		select {
		case port := <-ready:
			p.set(port, drop, nil)
			err = <-done
		case err = <-done:
		}
		drop()
		if err == nil && tctx.Err() != nil && ctx.Err() == nil {
			err = errNoAnswer
		}
		if err == nil {
			err = errors.New("tunnel closed")
		}
		p.set(0, nil, err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tunnelPort waits for an open tunnel and returns its port and number.
func (p *proxy) tunnelPort(ctx context.Context) (int, int, error) {
	for {
		p.mu.Lock()
		port, gen, last, ch := p.port, p.gen, p.lastErr, p.changed
		p.mu.Unlock()
		if port != 0 {
			return port, gen, nil
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return 0, 0, fmt.Errorf("port-forward to pod %s: %w", p.pod, last)
		case <-ch:
		}
	}
}

func (p *proxy) accept(ctx context.Context) {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(ctx, c)
		}()
	}
}

// serve pipes one local connection through the current tunnel.
func (p *proxy) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, dialWait)
	defer cancel()
	var up net.Conn
	var gen int
	for up == nil {
		port, g, err := p.tunnelPort(dctx)
		if err != nil {
			return
		}
		gen = g
		var d net.Dialer
		up, err = d.DialContext(dctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			select {
			case <-dctx.Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	var answered atomic.Bool
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() {
		n, _ := io.Copy(c, up)
		answered.Store(n > 0)
		done <- struct{}{}
	}()
	<-done // either side ended: the PostgreSQL protocol has no half-close
	c.Close()
	up.Close()
	<-done
	if !answered.Load() && ctx.Err() == nil {
		p.dropTunnel(gen)
	}
}

// close stops accepting, ends the tunnel and every piped connection, and
// waits for them.
func (p *proxy) close() {
	p.cancel()
	p.ln.Close()
	p.wg.Wait()
}
