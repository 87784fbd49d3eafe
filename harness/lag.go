package harness

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// lagSamples reads each standby's lag from the primary's
// pg_stat_replication.
func lagSamples(ctx context.Context, c cluster.Cluster, primary string) ([]results.LagSample, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(primary, true))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT application_name,
		coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), -1)::bigint,
		coalesce((extract(epoch from replay_lag) * 1e9)::bigint, -1), coalesce(sync_state, '')
		FROM pg_stat_replication`)
	if err != nil {
		return nil, err
	}
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
