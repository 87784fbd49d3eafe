package nemesis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// The verification of faults through SQL, for backends that are
// cluster.SQLObserved (see verify.go for the Inspector's).

// probeTimeout bounds one connection attempt of the SQL verification: a
// paused node's connections time out within it.
const probeTimeout = time.Second

// cutObserve is how long a cut-off standby must receive none of the WAL
// written after the cut (a standby on a working link receives it within
// milliseconds).
const cutObserve = time.Second

// answer is one attempt to reach a node through SQL.
type answer struct {
	ok       bool
	timedOut bool
	err      error
	st       results.NodeState
}

// ask connects to node as the admin, bounded by probeTimeout, and reads
// its state.
func (n *Nemesis) ask(ctx context.Context, node string) answer {
	cctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(n.c.ConnString(node, true))
	if err != nil {
		return answer{err: err}
	}
	cfg.ConnectTimeout = probeTimeout
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return answer{err: err, timedOut: isTimeout(err)}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var inRecovery bool
	if err := conn.QueryRow(cctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil {
		return answer{err: err, timedOut: isTimeout(err)}
	}
	st := results.NodeState{Node: node, Role: string(cluster.Primary)}
	if inRecovery {
		st.Role = string(cluster.Standby)
	}
	return answer{ok: true, st: st}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() || strings.Contains(err.Error(), "timeout")
}

// awaitAnswer asks node until cond holds or within passes.
func (n *Nemesis) awaitAnswer(ctx context.Context, node string, within time.Duration, cond func(answer) bool) (answer, bool) {
	deadline := time.Now().Add(within)
	for {
		a := n.ask(ctx, node)
		if cond(a) {
			return a, true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return a, false
		}
		hold(ctx, 100*time.Millisecond)
	}
}

// sqlDown checks that node stops answering: its connections are refused,
// dropped or time out.
func (n *Nemesis) sqlDown(ctx context.Context, o cluster.SQLObserved, f *results.Fault, node string) error {
	a, ok := n.awaitAnswer(ctx, node, verifyWithin, func(a answer) bool { return !a.ok })
	if !ok {
		return fmt.Errorf("%w: %s still answers queries (as %s)", ErrNotVerified, node, a.st.Role)
	}
	addVerified(f, fmt.Sprintf("%s: stopped answering (%v)", node, oneLine(a.err)))
	return nil
}

// sqlUp checks that node answers queries again.
func (n *Nemesis) sqlUp(ctx context.Context, o cluster.SQLObserved, f *results.Fault, node string) error {
	a, ok := n.awaitAnswer(ctx, node, o.ObserveWithin(), func(a answer) bool { return a.ok })
	if !ok {
		return fmt.Errorf("%w: %s does not answer: %v", ErrNotVerified, node, a.err)
	}
	addVerified(f, fmt.Sprintf("%s: answers as %s", node, a.st.Role))
	return nil
}

// sqlFrozen checks that node's connection attempts time out (a refused
// one is a node that is down, not paused).
func (n *Nemesis) sqlFrozen(ctx context.Context, o cluster.SQLObserved, f *results.Fault, node string) error {
	a, ok := n.awaitAnswer(ctx, node, verifyWithin, func(a answer) bool { return a.timedOut })
	if !ok {
		what := "it still answers"
		if a.err != nil {
			what = fmt.Sprintf("they fail otherwise: %v", oneLine(a.err))
		}
		return fmt.Errorf("%w: %s's connections do not time out (%s)", ErrNotVerified, node, what)
	}
	addVerified(f, fmt.Sprintf("%s: connection attempts time out after %v", node, probeTimeout))
	return nil
}

func oneLine(err error) string {
	if err == nil {
		return "no error"
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// sqlLinks verifies a partition (g) or a heal (g nil) through replication:
// the primary writes WAL (a bare transaction id, committed locally: no
// table is touched); each standby whose link to the primary g cuts must
// receive none of it for cutObserve, and every other standby must receive
// it within the backend's ObserveWithin. (pg_stat_replication and
// pg_stat_wal_receiver keep showing a cut stream as streaming until
// wal_sender_timeout or wal_receiver_timeout: WAL that does not arrive is
// the sooner and surer sign.) Links between
// standbys carry no replication: they are not observable this way, and
// the step says so.
func (n *Nemesis) sqlLinks(ctx context.Context, o cluster.SQLObserved, f *results.Fault, g cluster.Grudge) error {
	primary, err := cluster.FindPrimary(ctx, n.c)
	if err != nil {
		return fmt.Errorf("%w: no primary to observe replication from: %w", ErrNotVerified, err)
	}
	cut := map[[2]string]bool{}
	for _, p := range g.Pairs() {
		cut[p], cut[[2]string{p[1], p[0]}] = true, true
	}
	probe, err := writeProbe(ctx, n.c, primary)
	if err != nil {
		return fmt.Errorf("%w: write a probe on %s: %w", ErrNotVerified, primary, err)
	}
	var wrong, cutDone, connected []string
	for _, s := range n.c.Nodes() {
		if s == primary {
			continue
		}
		if cut[[2]string{primary, s}] {
			if got := n.receivedWithin(ctx, s, probe, cutObserve); got != "" {
				wrong = append(wrong, fmt.Sprintf("%s still receives WAL from %s (%s past the cut's probe at %s)", s, primary, got, cluster.FormatLSN(probe)))
				continue
			}
			cutDone = append(cutDone, s)
			continue
		}
		if got := n.receivedWithin(ctx, s, probe, o.ObserveWithin()); got == "" {
			wrong = append(wrong, fmt.Sprintf("%s receives no WAL from %s within %v (probe at %s)", s, primary, o.ObserveWithin(), cluster.FormatLSN(probe)))
			continue
		}
		connected = append(connected, s)
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%w: %s", ErrNotVerified, strings.Join(wrong, "; "))
	}
	var unseen []string
	for _, p := range g.Pairs() {
		if p[0] != primary && p[1] != primary {
			unseen = append(unseen, p[0]+"–"+p[1])
		}
	}
	msg := fmt.Sprintf("through SQL: %s receive WAL written on %s after the step", listOr(connected), primary)
	if len(cutDone) > 0 {
		msg += fmt.Sprintf("; %s received none of it for %v", strings.Join(cutDone, ", "), cutObserve)
	}
	if len(unseen) > 0 {
		sort.Strings(unseen)
		msg += fmt.Sprintf("; %s carry no replication: not observable through SQL", strings.Join(unseen, ", "))
	}
	addVerified(f, msg)
	return nil
}

func listOr(xs []string) string {
	if len(xs) == 0 {
		return "no standby"
	}
	return strings.Join(xs, ", ")
}

// writeProbe commits a transaction that writes WAL on primary (its xid's
// commit record; no table is touched) and returns the WAL position after
// that record once the primary has flushed it. Such a commit writes no
// other WAL, so PostgreSQL flushes it asynchronously (within
// wal_writer_delay): pg_current_wal_lsn() would not show it yet, hence the
// insert position and the wait for the flush.
func writeProbe(ctx context.Context, c cluster.Cluster, primary string) (uint64, error) {
	if err := cluster.VerifyPrimary(ctx, c, primary); err != nil {
		return 0, err
	}
	var target uint64
	err := cluster.WithAdminConn(ctx, c, primary, func(ctx context.Context, conn *pgx.Conn) error {
		var insert string
		if err := conn.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&insert); err != nil {
			return err
		}
		var err error
		if target, err = cluster.ParseLSN(insert); err != nil {
			return err
		}
		for {
			var flush string
			if err := conn.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&flush); err != nil {
				return err
			}
			if f, err := cluster.ParseLSN(flush); err == nil && f >= target {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the probe at %s is not flushed: %w", insert, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	return target, err
}

// receivedWithin polls standby until it has received WAL up to lsn, for
// up to d; it returns the position received then, or "" when it never did.
func (n *Nemesis) receivedWithin(ctx context.Context, standby string, lsn uint64, d time.Duration) string {
	deadline := time.Now().Add(d)
	for {
		st, err := cluster.QueryState(ctx, n.c.ConnString(standby, true))
		if err == nil && st.Role == string(cluster.Standby) {
			if got, perr := cluster.ParseLSN(st.ReceiveLSN); perr == nil && got >= lsn {
				return st.ReceiveLSN
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return ""
		}
		hold(ctx, 50*time.Millisecond)
	}
}
