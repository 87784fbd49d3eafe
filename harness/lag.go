package harness

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// lagSampler reads each standby's lag from the primary's
// pg_stat_replication over one connection that it keeps between samples
// (a fresh connection each time costs the cluster a fork and a SCRAM
// exchange four times a second) and replaces when the primary changes or
// the connection fails.
type lagSampler struct {
	c    cluster.Cluster
	node string
	conn *pgx.Conn
}

// Close closes the connection, if any.
func (l *lagSampler) Close() {
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l.conn.Close(ctx)
		l.conn = nil
	}
}

// sample returns the standbys' lag as primary sees it.
func (l *lagSampler) sample(ctx context.Context, primary string) ([]results.LagSample, error) {
	if l.conn != nil && (l.node != primary || l.conn.IsClosed()) {
		l.Close()
	}
	if l.conn == nil {
		conn, err := pgx.Connect(ctx, l.c.ConnString(primary, true))
		if err != nil {
			return nil, err
		}
		l.conn, l.node = conn, primary
	}
	out, err := lagSamples(ctx, l.conn, primary)
	if err != nil {
		l.Close() // a timeout leaves the connection in an unknown state
	}
	return out, err
}

func lagSamples(ctx context.Context, conn *pgx.Conn, primary string) ([]results.LagSample, error) {
	rows, err := conn.Query(ctx, `SELECT application_name,
		coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1)::bigint,
		coalesce((extract(epoch from replay_lag) * 1e9)::bigint, -1), coalesce(sync_state, '')
		FROM pg_stat_replication`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []results.LagSample
	for rows.Next() {
		s := results.LagSample{Primary: primary}
		if err := rows.Scan(&s.Node, &s.LagBytes, &s.ReplayLagNS, &s.SyncState); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
