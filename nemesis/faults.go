package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/syncnames"
	"github.com/strongcheck/strongcheck/results"
)

// skip records that window w's fault could not be aimed (no standby, no
// primary): a fault that did not happen, said so in the history.
func (n *Nemesis) skip(ctx context.Context, w *window, f, why string) error {
	_, err := n.record(ctx, w, f, results.PhaseInfo, nil, func(*results.Fault) error {
		return fmt.Errorf("%w: %s: skipped", ErrNotVerified, why)
	})
	return err
}

// kill SIGKILLs node and verifies it is down.
func (n *Nemesis) kill(ctx context.Context, f *results.Fault, node string) error {
	if err := n.c.Kill(ctx, node); err != nil {
		return err
	}
	return n.verifyDown(ctx, f, node)
}

// start starts node and verifies it runs and answers.
func (n *Nemesis) start(ctx context.Context, f *results.Fault, node string) error {
	if err := n.c.Start(ctx, node); err != nil {
		return err
	}
	return n.verifyUp(ctx, f, node)
}

// killPrimary kills the primary (after before, when set), fails over as
// the policy says, holds, runs beforeRecover (when set: the heal of a cut
// that must come before the old primary can reach the new one), and closes
// the window by rejoining or restarting the old primary. A kill that did
// not take effect is never followed by a promotion: two writable primaries
// must not coexist.
func (n *Nemesis) killPrimary(ctx context.Context, w *window, st Step, primary string, standbys []string, before func(ctx context.Context, f *results.Fault) error, beforeRecover func(ctx context.Context) error) error {
	if primary == "" {
		return n.skip(ctx, w, KillPrimary, "no primary to kill")
	}
	hctx := context.WithoutCancel(ctx)
	sync, serr := cluster.CurrentSync(hctx, n.c, primary)
	killed, err := n.record(ctx, w, KillPrimary, results.PhaseStart, []string{primary}, func(f *results.Fault) error {
		if serr == nil {
			f.Detail = fmt.Sprintf("%s ran with synchronous_standby_names %q", primary, sync)
		}
		if before != nil {
			if err := before(hctx, f); err != nil {
				return err
			}
		}
		return n.kill(hctx, f, primary)
	})
	if err != nil {
		return err
	}
	if n.afterKill != nil {
		if err := n.afterKill(hctx); err != nil {
			return err
		}
	}
	newPrimary := ""
	if killed {
		var syncp *syncnames.Names
		if serr == nil {
			syncp = &sync
		}
		if newPrimary, err = n.failover(ctx, w, st, primary, standbys, syncp); err != nil {
			return err
		}
	}
	n.setNow(fmt.Sprintf("%s: %s down", st.Fault, primary))
	hold(ctx, st.Hold)
	if beforeRecover != nil {
		if err := beforeRecover(hctx); err != nil {
			return err
		}
	}
	if m, ok := n.managed(); ok {
		return n.restartOld(ctx, w, m, primary, newPrimary)
	}
	if newPrimary == "" {
		_, err := n.record(ctx, w, "restart-old-primary", results.PhaseStop, []string{primary}, func(f *results.Fault) error {
			f.Primary = primary
			if n.c.Status(primary) == cluster.Down {
				if err := n.c.Start(hctx, primary); err != nil {
					return err
				}
			}
			if err := n.verifyUp(hctx, f, primary); err != nil {
				return err
			}
			return n.verifyPromoted(hctx, f, primary)
		})
		return err
	}
	_, err = n.record(ctx, w, "rejoin", results.PhaseStop, []string{primary}, func(f *results.Fault) error {
		res, err := cluster.RejoinOld(hctx, n.c, primary, newPrimary)
		f.Primary, f.Durations = newPrimary, durs(res.Durations)
		f.Detail = fmt.Sprintf("rejoined %s to %s with pg_rewind; sync list %q", primary, newPrimary, res.Sync)
		if err != nil {
			return err
		}
		return n.verifyStandbyOf(hctx, f, primary, newPrimary)
	})
	return err
}

// failover replaces the killed primary old as the policy says and returns
// the new primary ("" when there is none: no promotion, or it failed).
// sync is the list old ran with (nil: unknown, the spec's is assumed).
func (n *Nemesis) failover(ctx context.Context, w *window, st Step, old string, standbys []string, sync *syncnames.Names) (string, error) {
	hctx := context.WithoutCancel(ctx)
	switch n.cfg.Failover.Mode {
	case FailoverNone:
		return "", nil
	case FailoverExternal:
		if m, ok := n.managed(); ok {
			return n.awaitManager(ctx, w, m, old)
		}
		newPrimary := ""
		_, err := n.record(ctx, w, "await-primary", results.PhaseStep, nil, func(f *results.Fault) error {
			deadline := time.Now().Add(st.Hold)
			for time.Now().Before(deadline) {
				if p, err := cluster.FindPrimary(hctx, n.c); err == nil && p != old {
					f.Primary = p
					if err := n.verifyPromoted(hctx, f, p); err != nil {
						return err
					}
					newPrimary = p
					n.switchClients(w, p)
					return nil
				}
				time.Sleep(100 * time.Millisecond)
			}
			return fmt.Errorf("no new primary within %v", st.Hold)
		})
		return newPrimary, err
	}
	o := cluster.PromoteOptions{Old: old, Sync: sync}
	if n.cfg.Failover.Mode == FailoverPromote {
		switch n.cfg.Failover.Node {
		case PromoteLagging:
			o.Force = n.leastAdvanced(hctx, old, standbys)
		case PromoteMostAdvanced:
			o.MostAdvanced = true
		default:
			o.Force = n.cfg.Failover.Node
		}
	}
	return n.promote(ctx, w, o)
}

// promote records a promotion of a standby in place of the dead primary
// o.Old and the re-pointing of the other standbys, and returns the new
// primary. When no standby is known to hold every acknowledged commit and
// the policy leaves the choice to the harness, it promotes none and says
// why: that is a decision, not a failure.
func (n *Nemesis) promote(ctx context.Context, w *window, o cluster.PromoteOptions) (string, error) {
	hctx := context.WithoutCancel(ctx)
	newPrimary, switchLSN := "", ""
	var pointed []string
	_, err := n.record(ctx, w, "failover", results.PhaseStep, []string{o.Old}, func(f *results.Fault) error {
		if err := n.verifyDown(hctx, f, o.Old); err != nil {
			return fmt.Errorf("not promoting while %s may still take writes: %w", o.Old, err)
		}
		res, err := cluster.Promote(hctx, n.c, o)
		f.Primary, f.Durations, f.Forced = res.New, durs(res.Durations), res.Forced
		if errors.Is(err, cluster.ErrNoSafeStandby) {
			f.Primary = ""
			f.Detail = "no promotion: " + err.Error()
			return nil
		}
		f.Detail = fmt.Sprintf("promoted %s: %s; sync list %q", res.New, res.Reason, res.Sync)
		if err != nil {
			return err
		}
		// Promote saw res.New out of recovery. The clients write to it
		// from here on; the step is done only once it is verified the
		// only primary, taking writes (a failed verification fails the
		// step, and the run is unknown), but that need not delay the
		// clients' first write.
		newPrimary, switchLSN, pointed = res.New, res.SwitchLSN, res.Followers
		n.switchClients(w, res.New)
		return n.verifyPromoted(hctx, f, res.New)
	})
	if err != nil || newPrimary == "" {
		return newPrimary, err
	}
	_, err = n.record(ctx, w, "repoint", results.PhaseStep, nil, func(f *results.Fault) error {
		followers, rewound, err := cluster.Repoint(hctx, n.c, o.Old, newPrimary, switchLSN, pointed)
		f.Primary, f.Targets = newPrimary, followers
		f.Detail = fmt.Sprintf("re-pointed %s at %s", strings.Join(followers, ", "), newPrimary)
		if len(rewound) > 0 {
			f.Detail += fmt.Sprintf("; %s could not follow (it had WAL %s never received) and was rewound", strings.Join(rewound, ", "), newPrimary)
		}
		return err
	})
	return newPrimary, err
}

// lagThenKill congests the links so that the standbys fall behind, kills
// the primary while they are behind, lifts the limit and fails over.
func (n *Nemesis) lagThenKill(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	shaper, ok := n.c.(cluster.LinkShaper)
	if !ok {
		return n.skip(ctx, w, LagThenKill, fmt.Sprintf("backend %s cannot shape links", n.c.Backend()))
	}
	hctx := context.WithoutCancel(ctx)
	congested, err := n.record(ctx, w, "congest", results.PhaseStart, standbys, func(f *results.Fault) error {
		f.Detail = "links between nodes limited to " + LagRate
		return shaper.ShapeLinks(hctx, LagRate)
	})
	if err != nil {
		return err
	}
	hold(ctx, st.Hold/2)
	uncongest := func(ctx context.Context) error {
		_, err := n.record(ctx, w, "uncongest", results.PhaseStop, standbys, func(*results.Fault) error {
			return shaper.ShapeLinks(hctx, "")
		})
		return err
	}
	if congested {
		congested, err = n.record(ctx, w, "lag", results.PhaseStep, standbys, func(f *results.Fault) error {
			lag, _, err := padUntilBehind(hctx, n.c, primary, lagWait)
			f.Detail = lag
			return err
		})
		if err != nil {
			return err
		}
	}
	if !congested {
		return uncongest(ctx)
	}
	sub := st
	sub.Hold = st.Hold / 2
	// The kill opens its own window; the limit is lifted right after the
	// kill, before the failover, so recovery runs at full speed.
	kw := n.open(KillPrimary)
	n.afterKill = uncongest
	defer func() { n.afterKill = nil }()
	return n.killPrimary(ctx, kw, sub, primary, standbys, nil, nil)
}

// leastAdvanced is the standby with the lowest received LSN (the operator's
// mistake that promote:lagging reproduces).
func (n *Nemesis) leastAdvanced(ctx context.Context, old string, standbys []string) string {
	best, bestLSN := "", uint64(0)
	for _, s := range cluster.NodeStates(ctx, n.c) {
		if s.Node == old || !slices.Contains(standbys, s.Node) || s.Role != string(cluster.Standby) {
			continue
		}
		lsn, err := cluster.ParseLSN(s.ReceiveLSN)
		if err != nil {
			lsn, _ = cluster.ParseLSN(s.ReplayLSN)
		}
		if best == "" || lsn < bestLSN {
			best, bestLSN = s.Node, lsn
		}
	}
	return best
}

func (n *Nemesis) killStandby(ctx context.Context, w *window, st Step, standbys []string) error {
	target := pick(standbys, st.Pick)
	if target == "" {
		return n.skip(ctx, w, KillStandby, "no standby to kill")
	}
	hctx := context.WithoutCancel(ctx)
	if _, err := n.record(ctx, w, KillStandby, results.PhaseStart, []string{target}, func(f *results.Fault) error {
		return n.kill(hctx, f, target)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold)
	_, err := n.record(ctx, w, "start", results.PhaseStop, []string{target}, func(f *results.Fault) error {
		return n.start(hctx, f, target)
	})
	return err
}

func (n *Nemesis) nodeFault(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	var target string
	switch st.Fault.Target {
	case "primary":
		target = primary
	case "standby":
		target = pick(standbys, st.Pick)
	case "":
		target = pick(append([]string{primary}, standbys...), st.Pick)
	default:
		target = st.Fault.Target
	}
	if target == "" {
		return n.skip(ctx, w, st.Fault.Kind, "no node to aim at")
	}
	hctx := context.WithoutCancel(ctx)
	if st.Fault.Kind == Pause {
		if _, err := n.record(ctx, w, Pause, results.PhaseStart, []string{target}, func(f *results.Fault) error {
			if err := n.c.Pause(hctx, target); err != nil {
				return err
			}
			return n.verifyFrozen(hctx, f, target)
		}); err != nil {
			return err
		}
		hold(ctx, st.Hold)
		_, err := n.record(ctx, w, "resume", results.PhaseStop, []string{target}, func(f *results.Fault) error {
			if err := n.c.Resume(hctx, target); err != nil {
				return err
			}
			return n.verifyThawed(hctx, f, target)
		})
		return err
	}
	if _, err := n.record(ctx, w, "stop", results.PhaseStart, []string{target}, func(f *results.Fault) error {
		if err := n.c.Stop(hctx, target); err != nil {
			return err
		}
		return n.verifyDown(hctx, f, target)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold/4)
	_, err := n.record(ctx, w, "start", results.PhaseStop, []string{target}, func(f *results.Fault) error {
		return n.start(hctx, f, target)
	})
	return err
}

// grudgeFor builds the partition a fault asks for.
func grudgeFor(mode string, pickN uint32, primary string, standbys []string) (cluster.Grudge, []string) {
	if mode == "" {
		mode = []string{"standby", "primary", "halves"}[pickN%3]
		pickN /= 3
	}
	switch mode {
	case "primary":
		return cluster.Grudge{primary: standbys}, []string{primary}
	case "halves":
		all := append([]string{primary}, standbys...)
		sort.Strings(all)
		lone := pick(all, pickN)
		var rest []string
		for _, x := range all {
			if x != lone {
				rest = append(rest, x)
			}
		}
		return cluster.Grudge{lone: rest}, []string{lone}
	}
	s := pick(standbys, pickN)
	if s == "" {
		return nil, nil
	}
	return cluster.Grudge{primary: {s}}, []string{s}
}

// cut partitions the cluster as g says and verifies the cut.
func (n *Nemesis) cut(ctx context.Context, f *results.Fault, g cluster.Grudge) error {
	f.Grudge = g
	if err := n.c.Partition(ctx, g); err != nil {
		return err
	}
	return n.verifyLinks(ctx, f, g)
}

// heal removes every cut and verifies every link connects again.
func (n *Nemesis) heal(ctx context.Context, f *results.Fault) error {
	if err := n.c.Heal(ctx); err != nil {
		return err
	}
	return n.verifyLinks(ctx, f, nil)
}

func (n *Nemesis) partition(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	g, targets := grudgeFor(st.Fault.Target, st.Pick, primary, standbys)
	if g == nil {
		return n.skip(ctx, w, Partition, "no standby to cut off")
	}
	hctx := context.WithoutCancel(ctx)
	if _, err := n.record(ctx, w, Partition, results.PhaseStart, targets, func(f *results.Fault) error {
		return n.cut(hctx, f, g)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold)
	_, err := n.record(ctx, w, "heal", results.PhaseStop, targets, func(f *results.Fault) error { return n.heal(hctx, f) })
	return err
}

// cutOff handles the faults that first cut one standby off the primary:
// cancel-sync-wait, crash-while-waiting and cut-then-kill.
// The standby cut off is one the primary's commits wait for (see
// waitedFor): cutting off an asynchronous or a potential standby (FIRST 1,
// or a manager's single synchronous standby) holds no commit.
func (n *Nemesis) cutOff(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	cands, why := n.waitedFor(ctx, primary, standbys)
	s := pick(cands, st.Pick)
	if s == "" {
		return n.skip(ctx, w, st.Fault.Kind, "no standby to cut off")
	}
	hctx := context.WithoutCancel(ctx)
	g := cluster.Grudge{primary: {s}}
	if _, err := n.record(ctx, w, Partition, results.PhaseStart, []string{s}, func(f *results.Fault) error {
		f.Detail = fmt.Sprintf("%s cut off from %s for %s (%s)", s, primary, st.Fault, why)
		return n.cut(hctx, f, g)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold/2)
	heal := func(ctx context.Context) error {
		_, err := n.record(ctx, w, "heal", results.PhaseStop, []string{s}, func(f *results.Fault) error { return n.heal(hctx, f) })
		return err
	}
	switch st.Fault.Kind {
	case CancelSyncWait:
		if _, err := n.record(ctx, w, CancelSyncWait, results.PhaseStep, []string{primary}, func(f *results.Fault) error {
			return n.cancelWaiters(hctx, f, primary)
		}); err != nil {
			return err
		}
		hold(ctx, st.Hold/2)
	case CrashWhileWaiting:
		if _, err := n.record(ctx, w, "crash-primary", results.PhaseStep, []string{primary}, func(f *results.Fault) error {
			return n.crashWhileWaiting(hctx, f, primary)
		}); err != nil {
			return err
		}
		hold(ctx, st.Hold/2)
	case CutThenKill:
		var before func(context.Context, *results.Fault) error
		if st.Fault.Target == "cancel" {
			before = func(ctx context.Context, f *results.Fault) error { return n.cancelBeforeKill(ctx, f, primary) }
		}
		// The kill opens a window of its own inside the cut's; the cut
		// heals before the old primary is rewound from the new one.
		sub := st
		sub.Hold = st.Hold / 2
		return n.killPrimary(ctx, n.open(KillPrimary), sub, primary, standbys, before, heal)
	}
	return heal(ctx)
}

// waitedFor returns the standbys, in their order, whose replies primary's
// commits wait for now: those pg_stat_replication shows as sync or quorum.
// When it cannot tell (the query failed, or no standby is synchronous) it
// returns every standby; why says which case it was, for the step's detail.
func (n *Nemesis) waitedFor(ctx context.Context, primary string, standbys []string) (cands []string, why string) {
	rs, err := cluster.Replication(ctx, n.c, primary)
	if err != nil {
		return standbys, fmt.Sprintf("any standby: pg_stat_replication: %v", err)
	}
	if c := syncOnly(standbys, rs); len(c) > 0 {
		return c, fmt.Sprintf("commits wait for %s", strings.Join(c, ", "))
	}
	return standbys, "any standby: pg_stat_replication shows none synchronous"
}

// syncOnly keeps the standbys whose commits wait for them in rs.
func syncOnly(standbys []string, rs []results.ReplicationState) []string {
	var out []string
	for _, s := range standbys {
		if slices.ContainsFunc(rs, func(r results.ReplicationState) bool { return r.Name == s && r.CommitsWait() }) {
			out = append(out, s)
		}
	}
	return out
}

// cancelRounds and cancelGap shape the cancels before a kill: commits
// that were waiting when the standby was cut off may have reached it
// before the cut, so the cancel is repeated, each round catching the
// commits the clients began after the previous one released them.
const (
	cancelRounds = 4
	cancelGap    = 150 * time.Millisecond
)

// cancelBeforeKill cancels primary's waiting commits in cancelRounds
// rounds, then gives the cancelled backends cancelGap to acknowledge
// their commits (with the warning) before the kill. None cancelled in any
// round means the fault had nothing to act on: the kill is not made.
func (n *Nemesis) cancelBeforeKill(ctx context.Context, f *results.Fault, primary string) error {
	if _, err := awaitWaiters(ctx, n.c, primary, waitersWait); err != nil {
		return err
	}
	total := 0
	for round := range cancelRounds {
		if round > 0 {
			hold(ctx, cancelGap)
		}
		pids, err := CancelSyncWaiters(ctx, n.c, primary)
		if err != nil {
			return err
		}
		total += len(pids)
	}
	hold(ctx, cancelGap)
	note := fmt.Sprintf("pg_cancel_backend on %d waiting commit(s) in %d rounds before the kill", total, cancelRounds)
	if f.Detail != "" {
		note = f.Detail + "; " + note
	}
	f.Detail = note
	if total == 0 {
		return fmt.Errorf("%w: no commit was waiting for synchronous replication on %s", ErrNotVerified, primary)
	}
	return nil
}

// cancelWaiters cancels the commits of primary that wait for synchronous
// replication; none waiting means the fault had nothing to act on.
func (n *Nemesis) cancelWaiters(ctx context.Context, f *results.Fault, primary string) error {
	if _, err := awaitWaiters(ctx, n.c, primary, waitersWait); err != nil {
		return err
	}
	pids, err := CancelSyncWaiters(ctx, n.c, primary)
	f.Detail = fmt.Sprintf("pg_cancel_backend on %d backend(s) waiting for SyncRep: %v", len(pids), pids)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("%w: no commit was waiting for synchronous replication on %s", ErrNotVerified, primary)
	}
	addVerified(f, fmt.Sprintf("%d waiting commits cancelled", len(pids)))
	return nil
}

// crashWhileWaiting kills and restarts primary while commits wait for a
// standby; none waiting means the fault had nothing to act on.
func (n *Nemesis) crashWhileWaiting(ctx context.Context, f *results.Fault, primary string) error {
	waiting, err := awaitWaiters(ctx, n.c, primary, waitersWait)
	if err != nil {
		return err
	}
	f.Detail = fmt.Sprintf("%d commit(s) waiting for SyncRep when %s was killed and restarted", len(waiting), primary)
	if len(waiting) == 0 {
		return fmt.Errorf("%w: no commit was waiting for synchronous replication on %s", ErrNotVerified, primary)
	}
	if err := n.kill(ctx, f, primary); err != nil {
		return err
	}
	return n.start(ctx, f, primary)
}

// syncWaitersSQL lists the backends waiting for synchronous replication.
const syncWaitersSQL = `SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' ORDER BY pid`

// waitersWait bounds how long a fault that acts on waiting commits waits
// for the clients' commits to wait for the standby it cut off: a client
// that was between operations when the cut came commits within its next
// operation.
const waitersWait = 5 * time.Second

// awaitWaiters polls, up to d, until a backend of primary waits for
// synchronous replication, and returns the waiting backends (none when d
// passed: the caller says the fault had nothing to act on).
func awaitWaiters(ctx context.Context, c cluster.Cluster, primary string, d time.Duration) ([]int, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(primary, true))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	deadline := time.Now().Add(d)
	for {
		pids, err := pidsOn(ctx, conn, syncWaitersSQL)
		if err != nil || len(pids) > 0 || time.Now().After(deadline) {
			return pids, err
		}
		hold(ctx, 20*time.Millisecond)
	}
}

// CancelSyncWaiters sends pg_cancel_backend to every backend of primary
// whose wait event is SyncRep and returns their PIDs: the documented way
// in which PostgreSQL makes a commit that a standby never received visible
// (and acknowledged to its client, with a warning).
func CancelSyncWaiters(ctx context.Context, c cluster.Cluster, primary string) ([]int, error) {
	// OFFSET 0 keeps the planner from folding the filter into the call:
	// pg_cancel_backend must only ever see the waiters (not, say, this
	// very backend).
	return queryPIDs(ctx, c, primary, `SELECT pid FROM (SELECT pid FROM pg_stat_activity
		WHERE wait_event = 'SyncRep' AND pid <> pg_backend_pid() OFFSET 0) w
		WHERE pg_cancel_backend(pid) ORDER BY pid`)
}

// queryPIDs runs a query returning PIDs on node as the superuser.
func queryPIDs(ctx context.Context, c cluster.Cluster, node, sql string, args ...any) ([]int, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(node, true))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return pidsOn(ctx, conn, sql, args...)
}

// pidsOn runs a query returning PIDs on conn.
func pidsOn(ctx context.Context, conn *pgx.Conn, sql string, args ...any) ([]int, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}
