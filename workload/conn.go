package workload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Conn is one client connection to one node. It records the server's
// notices of severity WARNING (e.g. "canceling wait for synchronous
// replication ...") received during the current operation, which Do copies
// into the completion's Warning.
//
// A Conn is not safe for concurrent use: one worker owns it.
type Conn struct {
	pg      *pgx.Conn
	warning strings.Builder
	// closedAtStart: the connection was already closed when the current
	// operation began, so nothing of it reached the server.
	closedAtStart bool
	// expired: the timeout of Within has passed; no further statement of
	// the operation is sent (expiryTracer, execFast).
	expired atomic.Bool
	// The fast path (fastpath.go): the statements prepared so far (nil on
	// connections other than ConnectClient's, which never take it); the
	// buffers of the last exchange; dropped once it closed the socket.
	prepared   map[*fastStmt]bool
	wbuf, rbuf []byte
	dropped    bool
}

// ConnOptions tune a connection.
type ConnOptions struct {
	// CancelOnTimeout lets pgx send a cancel request when an operation's
	// context expires (pgx's own behaviour). The server then cancels the
	// statement, or, if it is a commit waiting for synchronous replication,
	// stops the wait: the commit stays local to the primary and becomes
	// visible there although no standby has it. Off (Connect's default),
	// an expired context only abandons the connection: the server finishes
	// the statement or keeps waiting as if the client's network had died,
	// and the backend holds a connection slot until then. Either way the
	// operation is info.
	CancelOnTimeout bool
}

// Connect opens a connection to dsn with the default ConnOptions: a
// client timeout never sends a cancel request, so the only commits released
// early from the synchronous-replication wait are the nemesis's.
// Statements are prepared once per connection (pgx's statement cache), so
// an operation is one round trip. ctx bounds the connection attempt; set
// connect_timeout in dsn or a deadline on ctx so an unreachable node cannot
// hang the caller.
func Connect(ctx context.Context, dsn string) (*Conn, error) {
	return ConnectWith(ctx, dsn, ConnOptions{})
}

// errNoCancel refuses the dial of a cancel request.
var errNoCancel = errors.New("workload: cancel requests are off for this connection")

// ConnectWith is Connect with options.
func ConnectWith(ctx context.Context, dsn string, opts ConnOptions) (*Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("workload: parse dsn: %w", err)
	}
	c := &Conn{}
	cfg.OnNotice = c.onNotice
	var connected atomic.Bool
	if !opts.CancelOnTimeout {
		// pgx dials a new connection for a cancel request, also when it
		// abandons a connection whose context expired: once connected,
		// refuse every further dial.
		dial := cfg.DialFunc
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if connected.Load() {
				return nil, errNoCancel
			}
			return dial(ctx, network, addr)
		}
	}
	pg, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, &ConnectError{err: err}
	}
	connected.Store(true)
	c.pg = pg
	return c, nil
}

// onNotice keeps the WARNING notices; pgx calls it on the goroutine that
// reads the connection, i.e. inside the operation that received it.
func (c *Conn) onNotice(_ *pgconn.PgConn, n *pgconn.Notice) {
	sev := n.SeverityUnlocalized
	if sev == "" {
		sev = n.Severity
	}
	if sev != "WARNING" {
		return
	}
	if c.warning.Len() > 0 {
		c.warning.WriteString("; ")
	}
	c.warning.WriteString(n.Message)
	if n.Detail != "" {
		c.warning.WriteString(" (")
		c.warning.WriteString(n.Detail)
		c.warning.WriteString(")")
	}
}

// beginOp forgets the warnings of the previous operation.
func (c *Conn) beginOp() { c.warning.Reset(); c.closedAtStart = c.IsClosed() }

// Warning returns the WARNING notices received since the current or last
// operation began ("" when none), messages joined by "; ".
func (c *Conn) Warning() string { return c.warning.String() }

// IsClosed reports whether the connection is gone (closed, lost, or closed
// by pgx after a timeout). A worker must then reconnect.
func (c *Conn) IsClosed() bool { return c.pg == nil || c.dropped || c.pg.IsClosed() }

// PgxConn is the underlying connection, for administrative statements and
// tests. Do not use it while an operation runs on c.
func (c *Conn) PgxConn() *pgx.Conn { return c.pg }

// Close closes the connection; ctx bounds the polite termination message.
func (c *Conn) Close(ctx context.Context) error {
	if c.pg == nil {
		return nil
	}
	if c.dropped { // the socket is closed already: nothing to say goodbye on
		_ = c.pg.Close(ctx)
		return nil
	}
	if err := c.pg.Close(ctx); err != nil {
		return fmt.Errorf("workload: close: %w", err)
	}
	return nil
}

// ConnectError is a failed connection attempt. Its text is short, the
// network's own words (every failed attempt while a node is down is one
// line of the history); Unwrap gives pgx's error with everything else.
type ConnectError struct{ err error }

func (e *ConnectError) Error() string {
	var op *net.OpError
	if errors.As(e.err, &op) {
		return "workload: connect: " + op.Error()
	}
	var ce *pgconn.ConnectError
	if errors.As(e.err, &ce) && ce.Unwrap() != nil {
		return "workload: connect: " + ce.Unwrap().Error()
	}
	return "workload: connect: " + e.err.Error()
}

// Unwrap returns pgx's error.
func (e *ConnectError) Unwrap() error { return e.err }
