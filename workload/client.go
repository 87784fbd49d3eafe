package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/strongcheck/strongcheck/results"
)

// CancelGrace is how long a client whose operation timed out waits for the
// server to answer its cancel request before it drops the connection.
const CancelGrace = time.Second

// PrimaryDSN is dsn for a connection meant for the primary, as an
// application's primary connection string has it (libpq's
// target_session_attrs=read-write): a node in recovery refuses it at
// connect. A client that still takes a demoted node for the primary (an HA
// manager restarted it read-only before the harness learnt of the
// failover) then fails to connect, certainly without effect, instead of
// reading whatever that node shows.
func PrimaryDSN(dsn string) string { return dsn + " target_session_attrs=read-write" }

// ConnectClient is Connect for the workers of a run. When an operation's
// context expires, the client first sends a cancel request, as an
// application's statement timeout does (JDBC's setQueryTimeout, psql's
// Ctrl-C), and drops the connection only if the server has not answered
// within CancelGrace. A commit waiting for synchronous replication then
// ends with the warning "canceling wait for synchronous replication": the
// transaction is committed locally and visible, though a standby may not
// have it. pgx's default (drop the socket, no cancel) would leave such a
// commit waiting on the server instead.
func ConnectClient(ctx context.Context, dsn string) (*Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("workload: parse dsn: %w", err)
	}
	c := &Conn{}
	cfg.OnNotice = c.onNotice
	cfg.Tracer = expiryTracer{c}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, CancelRequestDelay: 0, DeadlineDelay: CancelGrace}
	}
	pg, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("workload: connect: %w", err)
	}
	c.pg = pg
	c.prepared = map[*fastStmt]bool{}
	c.wbuf, c.rbuf = make([]byte, 0, 128), make([]byte, 4096)
	return c, nil
}

// Within runs fn, one operation on c (a ConnectClient connection), bounded
// by d as an operation context that expires after d would bound it, but
// with a context that never ends: pgx then watches no context for each
// statement, which costs about a quarter of pgbench's CPU per write
// (`make bench`). When d passes, a cancel request goes to the server and
// the connection's deadline is set CancelGrace later, as ConnectClient's
// handler does for an expired context, and no further statement of fn is
// sent: each ends at once with the error of a context already done (safe
// to retry: certainly not sent). fn gets ctx without its cancellation, and
// the register's and set's single statements then take the fast path
// (fastpath.go).
func (c *Conn) Within(ctx context.Context, d time.Duration, fn func(context.Context) results.Op) results.Op {
	c.expired.Store(false)
	done := make(chan struct{})
	timer := time.AfterFunc(d, func() { c.expire(done) })
	res := fn(context.WithoutCancel(ctx))
	if !timer.Stop() {
		<-done
		if !c.IsClosed() {
			_ = c.pg.PgConn().Conn().SetDeadline(time.Time{})
		}
		c.expired.Store(false)
	}
	return res
}

// expire is Within's timeout: what pgconn's CancelRequestContextWatcherHandler
// does when a watched context expires, and the mark that stops further
// statements. It closes done when finished.
func (c *Conn) expire(done chan struct{}) {
	defer close(done)
	c.expired.Store(true)
	pc := c.pg.PgConn()
	deadline := time.Now().Add(CancelGrace)
	_ = pc.Conn().SetDeadline(deadline)
	cctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	_ = pc.CancelRequest(cctx)
	// As pgconn's handler: a cancel request the server has received may
	// not yet have reached the backend, and must not cancel the next
	// operation's statement.
	time.Sleep(100 * time.Millisecond)
}

// expiredCtx is a context that is already done (its deadline passed): a
// statement given it is not sent.
var expiredCtx = func() context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	cancel() // already done with DeadlineExceeded; cancel changes nothing
	return ctx
}()

// expiryTracer hands pgx, for every statement of a ConnectClient
// connection, the operation's context until Within's timeout has passed
// and an expired one after it, so that pgx refuses to send the statement.
type expiryTracer struct{ c *Conn }

func (t expiryTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if t.c.expired.Load() {
		return expiredCtx
	}
	return ctx
}

func (expiryTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
