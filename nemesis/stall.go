package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// stallQueue bounds the wait for commits to queue behind the paused
// standbys (a client commits within its next operation, which on a slow
// backend such as Kubernetes's port-forwards takes longer); stallFill is
// how long they are given to queue once one does.
const (
	stallQueue = 5 * time.Second
	stallFill  = 50 * time.Millisecond
)

// stallCommits stops some of the primary's backends that wait for
// synchronous replication (their commit records are written and on their
// way to the standbys, their transactions not yet visible on the
// primary), verifies that the standbys replay past those commits while
// the backends stay stopped, holds, and continues them. It is what a
// scheduler that starves a backend at its commit does: for the hold, a
// standby shows commits the primary does not, while the primary shows
// later ones.
func (n *Nemesis) stallCommits(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	bp, ok := n.c.(cluster.BackendPauser)
	if !ok {
		return n.skip(ctx, w, StallCommit, fmt.Sprintf("backend %s cannot stop single server processes", n.c.Backend()))
	}
	hctx := context.WithoutCancel(ctx)
	var stalled []int
	okStart, err := n.record(ctx, w, StallCommit, results.PhaseStart, []string{primary}, func(f *results.Fault) error {
		var err error
		stalled, err = n.stall(hctx, bp, f, primary, standbys, st.Pick)
		return err
	})
	if err != nil && len(stalled) == 0 {
		return err
	}
	if err == nil && okStart {
		hold(ctx, st.Hold)
	}
	_, cerr := n.record(ctx, w, "continue", results.PhaseStop, []string{primary}, func(f *results.Fault) error {
		f.Detail = fmt.Sprintf("SIGCONT to backends %v", stalled)
		if len(stalled) == 0 {
			f.Detail = "nothing was stopped: the window closes"
		}
		if err := bp.ResumeBackends(hctx, primary, stalled); err != nil {
			return err
		}
		_, running, err := n.awaitProcesses(hctx, primary, func(ps cluster.ProcessState) bool { return ps.Stopped == 0 })
		if err != nil {
			return err
		}
		if !running {
			return fmt.Errorf("%w: backends of %s still stopped after SIGCONT", ErrNotVerified, primary)
		}
		addVerified(f, "no process of "+primary+" stopped")
		return nil
	})
	// Once more, whatever the record did: a continue that could not be
	// recorded must still happen (a second SIGCONT is harmless).
	return errors.Join(err, cerr, bp.ResumeBackends(hctx, primary, stalled))
}

// stall makes commits wait (it pauses the standbys for a moment), stops a
// third of the primary's backends waiting for SyncRep (at least one: the
// others go on and commit after them), and resumes the standbys.
// It then verifies the fault's effect: the stopped backends were still
// waiting when stopped, the kernel shows them stopped, and every standby
// replays past the primary's WAL position, so past their commits, which
// the primary does not show until they continue. It returns the backends
// it left stopped, also on a failed verification.
func (n *Nemesis) stall(ctx context.Context, bp cluster.BackendPauser, f *results.Fault, primary string, standbys []string, pickN uint32) ([]int, error) {
	conn, err := pgx.Connect(ctx, n.c.ConnString(primary, true))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var perr error
	for _, sb := range standbys {
		perr = errors.Join(perr, n.c.Pause(ctx, sb))
	}
	var stalled []int
	if perr == nil {
		stalled, err = stallWaiters(ctx, bp, conn, primary, pickN)
	}
	who := strings.Join(standbys, ", ")
	f.Detail = fmt.Sprintf("%s paused so that commits wait; SIGSTOP to %d backend(s) of %s waiting for SyncRep: %v; %s resumed", who, len(stalled), primary, stalled, who)
	for _, sb := range standbys {
		perr = errors.Join(perr, n.c.Resume(ctx, sb))
	}
	if perr != nil || err != nil {
		return stalled, errors.Join(err, perr)
	}
	if len(stalled) == 0 {
		return nil, fmt.Errorf("%w: no commit waited for synchronous replication on %s while %s were paused", ErrNotVerified, primary, who)
	}
	_, frozen, err := n.awaitProcesses(ctx, primary, func(ps cluster.ProcessState) bool { return ps.Stopped >= len(stalled) })
	if err != nil {
		return stalled, err
	}
	if !frozen {
		return stalled, fmt.Errorf("%w: the kernel does not show %d stopped process(es) on %s", ErrNotVerified, len(stalled), primary)
	}
	rctx, cancel := context.WithTimeout(ctx, verifyWithin)
	defer cancel()
	if err := cluster.WaitReplayed(rctx, n.c, primary, standbys); err != nil {
		return stalled, fmt.Errorf("%w: %w", ErrNotVerified, err)
	}
	addVerified(f, fmt.Sprintf("%d backend(s) stopped inside their commit's wait; %s replayed past %s's WAL position, so past those commits",
		len(stalled), strings.Join(standbys, ", "), primary))
	return stalled, nil
}

// stallWaiters waits, up to stallQueue, for commits to wait for SyncRep
// on conn's server, gives others stallFill to join them, stops a third of
// them (at least one, from a place pickN gives) and returns those still
// shown waiting once stopped (with the standbys paused, all of them).
func stallWaiters(ctx context.Context, bp cluster.BackendPauser, conn *pgx.Conn, primary string, pickN uint32) ([]int, error) {
	deadline := time.Now().Add(stallQueue)
	var waiting []int
	for len(waiting) == 0 && time.Now().Before(deadline) {
		hold(ctx, stallFill/5)
		var err error
		if waiting, err = pidsOn(ctx, conn, syncWaitersSQL); err != nil {
			return nil, err
		}
	}
	if len(waiting) == 0 {
		return nil, nil
	}
	hold(ctx, stallFill)
	waiting, err := pidsOn(ctx, conn, syncWaitersSQL)
	if err != nil || len(waiting) == 0 {
		return nil, err
	}
	k := (len(waiting) + 2) / 3
	chosen := make([]int, 0, k)
	for i := range k {
		chosen = append(chosen, waiting[(int(pickN)+i)%len(waiting)])
	}
	stopped, err := bp.PauseBackends(ctx, primary, chosen)
	if err != nil {
		return stopped, err
	}
	still, err := pidsOn(ctx, conn, `SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' AND pid = ANY($1) ORDER BY pid`, stopped)
	if err != nil {
		return stopped, err
	}
	return still, bp.ResumeBackends(ctx, primary, without(stopped, still))
}

// without returns the elements of a not in b.
func without(a, b []int) []int {
	var out []int
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
