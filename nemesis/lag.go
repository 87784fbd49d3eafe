package nemesis

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
)

// lagBytes is how far a standby must trail the primary's WAL for the
// congestion to count as taken effect: far more than a standby on a free
// link trails by while writes go on (a few KiB), far less than a congested
// one (hundreds of KiB within a second).
const lagBytes = 64 << 10

// lagWait bounds the lag step: how long the nemesis writes WAL of its own
// on a congested link until a standby trails by lagBytes. At LagRate a
// standby falls lagBytes behind in about half a second of writing.
const lagWait = 10 * time.Second

// padTable is the nemesis's own table on the primary: lag-then-kill
// writes rows into it to make WAL, so that a standby falls behind whatever
// rate the clients write at. The clients never read it.
const padTable = "strongcheck_nemesis_pad"

// padRows and padRowBytes shape one padding statement: about 64 KiB of
// row data (rows under PostgreSQL's TOAST threshold are stored, and
// logged, uncompressed).
const (
	padRows     = 64
	padRowBytes = 1024
)

// padUntilBehind writes padding rows on primary, each statement committed
// without waiting for a standby (synchronous_commit = local), until a
// standby's replay trails the primary's WAL by lagBytes or d passes. It
// returns how far each standby trails and how many padding bytes it
// wrote; it fails when no standby fell behind: the congestion did not take
// effect.
func padUntilBehind(ctx context.Context, c cluster.Cluster, primary string, d time.Duration) (string, int64, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(primary, true))
	if err != nil {
		return "", 0, fmt.Errorf("lag: connect to %s: %w", primary, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, q := range []string{
		"SET synchronous_commit = local",
		"CREATE TABLE IF NOT EXISTS " + padTable + " (b text)",
		"TRUNCATE " + padTable,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", 0, fmt.Errorf("lag: %s on %s: %w", q, primary, err)
		}
	}
	insert := fmt.Sprintf("INSERT INTO %s SELECT repeat(md5(random()::text), %d) FROM generate_series(1, %d)",
		padTable, padRowBytes/32, padRows)
	deadline := time.Now().Add(d)
	var written int64
	for {
		detail, behind, err := replicationLag(ctx, c, primary)
		if err != nil || behind {
			return padDetail(detail, written), written, err
		}
		if time.Now().After(deadline) {
			return padDetail(detail, written), written,
				fmt.Errorf("%w: no standby fell %d KiB behind the primary within %s (%d KiB of padding written)", ErrNotVerified, lagBytes>>10, d, written>>10)
		}
		if _, err := conn.Exec(ctx, insert); err != nil {
			return padDetail(detail, written), written, fmt.Errorf("lag: padding on %s: %w", primary, err)
		}
		written += padRows * padRowBytes
	}
}

func padDetail(lag string, written int64) string {
	return fmt.Sprintf("%s (the nemesis wrote %d KiB of padding into %s)", lag, written>>10, padTable)
}

// replicationLag describes how far the standbys trail primary and whether
// one trails by lagBytes. The standbys' positions are read before the
// primary's, so a trail is never negative.
func replicationLag(ctx context.Context, c cluster.Cluster, primary string) (detail string, behind bool, err error) {
	rs, err := cluster.Replication(ctx, c, primary)
	if err != nil {
		return "", false, err
	}
	ps, err := cluster.QueryState(ctx, c.ConnString(primary, true))
	if err != nil {
		return "", false, err
	}
	cur, err := cluster.ParseLSN(ps.CurrentLSN)
	if err != nil {
		return "", false, err
	}
	var parts []string
	for _, r := range rs {
		lsn, err := cluster.ParseLSN(r.ReplayLSN)
		if err != nil {
			continue
		}
		if cur >= lsn+lagBytes {
			behind = true
		}
		parts = append(parts, fmt.Sprintf("%s replayed %d bytes behind %s", r.Name, int64(cur)-int64(lsn), ps.CurrentLSN))
	}
	return strings.Join(parts, "; "), behind, nil
}
