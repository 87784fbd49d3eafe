package workload

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
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
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, CancelRequestDelay: 0, DeadlineDelay: CancelGrace}
	}
	pg, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("workload: connect: %w", err)
	}
	c.pg = pg
	return c, nil
}
