package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster/syncnames"
	"github.com/strongcheck/strongcheck/results"
)

// AdminTimeout bounds one administrative SQL call when ctx has no earlier
// deadline: a paused or partitioned node must not hang the harness.
const AdminTimeout = 5 * time.Second

// withConn runs fn on a fresh admin connection to dsn.
func withConn(ctx context.Context, dsn string, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, AdminTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("parse dsn: %w", err)
	}
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 2*time.Second {
		cfg.ConnectTimeout = 2 * time.Second
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(ctx, conn)
}

// WithAdminConn runs fn on a fresh superuser connection to node, bounded
// by AdminTimeout.
func WithAdminConn(ctx context.Context, c Cluster, node string, fn func(ctx context.Context, conn *pgx.Conn) error) error {
	return withConn(ctx, c.ConnString(node, true), fn)
}

// Exec runs SQL statements, each in its own implicit transaction, on node as
// the superuser.
func Exec(ctx context.Context, c Cluster, node string, stmts ...string) error {
	return withConn(ctx, c.ConnString(node, true), func(ctx context.Context, conn *pgx.Conn) error {
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %q: %w", node, s, err)
			}
		}
		return nil
	})
}

// QueryState reads role, timeline and LSNs of the node behind dsn.
func QueryState(ctx context.Context, dsn string) (results.NodeState, error) {
	var s results.NodeState
	err := withConn(ctx, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		var inRecovery bool
		var cur, recv, replay *string
		var tli int
		err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(),
			CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
			pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
			CASE WHEN pg_is_in_recovery()
				THEN coalesce((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
				ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END`).Scan(&inRecovery, &cur, &recv, &replay, &tli)
		if err != nil {
			return err
		}
		s.Role = string(Primary)
		if inRecovery {
			s.Role = string(Standby)
		}
		s.Timeline = tli
		s.CurrentLSN, s.ReceiveLSN, s.ReplayLSN = deref(cur), deref(recv), deref(replay)
		return nil
	})
	return s, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Replication reads the primary's pg_stat_replication.
func Replication(ctx context.Context, c Cluster, primary string) ([]results.ReplicationState, error) {
	var out []results.ReplicationState
	err := withConn(ctx, c.ConnString(primary, true), func(ctx context.Context, conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT application_name, coalesce(state,''), coalesce(sync_state,''),
			coalesce(sent_lsn::text,''), coalesce(write_lsn::text,''), coalesce(flush_lsn::text,''),
			coalesce(replay_lsn::text,''),
			coalesce((extract(epoch from now() - reply_time)*1000)::bigint, -1)
			FROM pg_stat_replication ORDER BY application_name`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var r results.ReplicationState
			if err := rows.Scan(&r.Name, &r.State, &r.SyncState, &r.SentLSN, &r.WriteLSN, &r.FlushLSN, &r.ReplayLSN, &r.ReplyAgeMS); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// PromoteNode promotes standby node and waits (up to 60 s) until it
// accepts writes. It asks pg_promote not to wait and polls
// pg_is_in_recovery itself every promotePoll: pg_promote's own wait checks
// only every 100 ms, which would add up to that much to every failover.
func PromoteNode(ctx context.Context, c Cluster, node string) error {
	return withConn(ctx, c.ConnString(node, true), func(ctx context.Context, conn *pgx.Conn) error {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_promote(false)`).Scan(&ok); err != nil {
			return fmt.Errorf("promote %s: %w", node, err)
		}
		if !ok {
			return fmt.Errorf("promote %s: pg_promote returned false", node)
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		for {
			var inRecovery bool
			if err := conn.QueryRow(wctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
				return fmt.Errorf("promote %s: wait for the end of recovery: %w", node, err)
			}
			if !inRecovery {
				return nil
			}
			select {
			case <-wctx.Done():
				return fmt.Errorf("promote %s: still in recovery: %w", node, wctx.Err())
			case <-time.After(promotePoll):
			}
		}
	})
}

// promotePoll is how often PromoteNode asks whether recovery has ended.
const promotePoll = 2 * time.Millisecond

// SetSyncStandbys sets synchronous_standby_names on node (ALTER SYSTEM and a
// reload), e.g. "ANY 1 (n3)" or "" for none.
func SetSyncStandbys(ctx context.Context, c Cluster, node, value string) error {
	return AlterSystem(ctx, c.ConnString(node, true), "synchronous_standby_names", value)
}

// AlterSystem sets one parameter with ALTER SYSTEM and reloads the
// configuration.
func AlterSystem(ctx context.Context, dsn, name, value string) error {
	return withConn(ctx, dsn, func(ctx context.Context, conn *pgx.Conn) error {
		stmt := fmt.Sprintf("ALTER SYSTEM SET %s = %s", pgx.Identifier{name}.Sanitize(), quote(value))
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("alter system %s: %w", name, err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		return nil
	})
}

// Checkpoint runs CHECKPOINT on node (pg_rewind needs one on a freshly
// promoted source so that its control file shows the new timeline).
func Checkpoint(ctx context.Context, c Cluster, node string) error {
	return Exec(ctx, c, node, "CHECKPOINT")
}

// WaitStreaming waits until primary's pg_stat_replication shows every one of
// standbys streaming (and, when syncNeeded, in the sync states primary's
// current synchronous_standby_names asks for: every eligible standby sync,
// quorum or potential, and enough of them counted) and each of them has
// received WAL of the primary's timeline, polling every 20 ms until ctx
// ends. The timeline matters: a standby whose history forked before the
// primary's promotion reconnects in a loop and shows as streaming for
// moments while it replays nothing.
func WaitStreaming(ctx context.Context, c Cluster, primary string, standbys []string, syncNeeded bool) error {
	var last []results.ReplicationState
	var lastErr error
	var want *syncnames.Names
	for {
		if syncNeeded && want == nil {
			if s, err := CurrentSync(ctx, c, primary); err == nil {
				want = &s
			} else {
				lastErr = err
			}
		}
		if !syncNeeded || want != nil {
			ok, rs, err := streamingNow(ctx, c, primary, standbys, want)
			if ok {
				return nil
			}
			last, lastErr = rs, err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s to stream from %s: %w (last pg_stat_replication %s, last error %v)",
				strings.Join(standbys, ", "), primary, ctx.Err(), describeRepl(last), lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CurrentSync reads node's synchronous_standby_names as it runs now.
func CurrentSync(ctx context.Context, c Cluster, node string) (syncnames.Names, error) {
	var v string
	err := withConn(ctx, c.ConnString(node, true), func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&v)
	})
	if err != nil {
		return syncnames.Names{}, fmt.Errorf("%s: show synchronous_standby_names: %w", node, err)
	}
	return ParseSyncNames(v)
}

// streamingNow checks once what WaitStreaming waits for; sync, when not
// nil, is the list whose sync states must show.
func streamingNow(ctx context.Context, c Cluster, primary string, standbys []string, sync *syncnames.Names) (bool, []results.ReplicationState, error) {
	rs, err := Replication(ctx, c, primary)
	if err != nil {
		return false, nil, err
	}
	for _, want := range standbys {
		found := false
		for _, r := range rs {
			if r.Name == want && r.State == "streaming" {
				found = true
				break
			}
		}
		if !found {
			return false, rs, nil
		}
	}
	if sync != nil && !syncSatisfied(rs, *sync, standbys) {
		return false, rs, fmt.Errorf("sync states do not match %q yet", sync)
	}
	ps, err := QueryState(ctx, c.ConnString(primary, true))
	if err != nil {
		return false, rs, err
	}
	for _, s := range standbys {
		st, err := QueryState(ctx, c.ConnString(s, true))
		if err != nil {
			return false, rs, err
		}
		if st.Timeline != ps.Timeline {
			return false, rs, fmt.Errorf("%s receives timeline %d, %s is on %d", s, st.Timeline, primary, ps.Timeline)
		}
	}
	return true, rs, nil
}

// Follows reports whether standby streams from primary on its timeline
// right now.
func Follows(ctx context.Context, c Cluster, primary, standby string) bool {
	ok, _, _ := streamingNow(ctx, c, primary, []string{standby}, nil)
	return ok
}

func describeRepl(rs []results.ReplicationState) string {
	if len(rs) == 0 {
		return "empty"
	}
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s/%s", r.Name, r.State, r.SyncState)
	}
	return b.String()
}

// WaitReplayed waits until every node in standbys has replayed at least the
// primary's current WAL position as read once at the start.
func WaitReplayed(ctx context.Context, c Cluster, primary string, standbys []string) error {
	ps, err := QueryState(ctx, c.ConnString(primary, true))
	if err != nil {
		return fmt.Errorf("read %s's LSN: %w", primary, err)
	}
	target, err := ParseLSN(ps.CurrentLSN)
	if err != nil {
		return err
	}
	for _, s := range standbys {
		for {
			st, err := QueryState(ctx, c.ConnString(s, true))
			if err == nil {
				if lsn, perr := ParseLSN(st.ReplayLSN); perr == nil && lsn >= target {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("wait for %s to replay %s (at %s): %w", s, ps.CurrentLSN, st.ReplayLSN, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// ParseLSN parses PostgreSQL's "X/Y" LSN notation.
func ParseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("bad LSN %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("bad LSN %q: %w", s, err)
	}
	return h<<32 | l, nil
}

// FormatLSN renders an LSN in PostgreSQL's "X/Y" notation.
func FormatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)) }

// VerifyPrimary checks that node is out of recovery and takes writes: it
// commits a transaction that writes WAL (an xid and its commit record) with
// synchronous_commit = local, so the check does not wait for standbys the
// sync list may still be waiting for.
func VerifyPrimary(ctx context.Context, c Cluster, node string) error {
	return withConn(ctx, c.ConnString(node, true), func(ctx context.Context, conn *pgx.Conn) error {
		var inRecovery bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
			return fmt.Errorf("%s: %w", node, err)
		}
		if inRecovery {
			return fmt.Errorf("%s is still in recovery", node)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("%s: begin: %w", node, err)
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = local"); err != nil {
			return fmt.Errorf("%s: %w", node, err)
		}
		var xid string
		if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid); err != nil {
			return fmt.Errorf("%s does not take writes: %w", node, err)
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("%s does not commit: %w", node, err)
		}
		return nil
	})
}
