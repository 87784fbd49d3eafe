package nemesis

import (
	"context"
	"fmt"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// ManagerFailoverBound is how long a kill of the primary waits for an HA
// manager's failover before the step fails: well beyond the failover time
// of any sane configuration (Patroni's ttl defaults to 30 s,
// pg_auto_failover's health checks and demote timeout add up to about a
// minute by default).
var ManagerFailoverBound = 3 * time.Minute

// managed is the cluster's HA manager when an HA manager runs the cluster
// (cluster.Manager): then failover is the manager's and the nemesis only
// watches it.
func (n *Nemesis) managed() (cluster.Manager, bool) {
	m, ok := n.c.(cluster.Manager)
	return m, ok
}

// awaitManager records the manager's decision after the primary old was
// killed: a "failover" step (as the availability check measures it) whose
// primary is the node the manager promoted, verified out of recovery, taking
// writes and the only primary, and whose detail is the manager's account
// (timeline, synchronous standbys, every node's state). It returns the new
// primary ("" when the manager decided nothing within
// ManagerFailoverBound).
func (n *Nemesis) awaitManager(ctx context.Context, w *window, m cluster.Manager, old string) (string, error) {
	hctx := context.WithoutCancel(ctx)
	newPrimary := ""
	_, err := n.record(ctx, w, "failover", results.PhaseStep, []string{old}, func(f *results.Fault) error {
		actx, cancel := context.WithTimeout(hctx, ManagerFailoverBound)
		defer cancel()
		v, err := m.AwaitFailover(actx, old)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Manager(), err)
		}
		f.Primary = v.Primary
		f.Detail = fmt.Sprintf("%s promoted %s: %s", m.Manager(), v.Primary, v)
		if err := n.verifyPromoted(hctx, f, v.Primary); err != nil {
			return err
		}
		newPrimary = v.Primary
		n.switchClients(w, v.Primary)
		return nil
	})
	return newPrimary, err
}

// restartOld closes a kill window under a manager: the old primary is
// started again and the manager rejoins it (pg_rewind is the manager's
// job); the health step that follows waits for the manager to report it.
func (n *Nemesis) restartOld(ctx context.Context, w *window, m cluster.Manager, old, newPrimary string) error {
	hctx := context.WithoutCancel(ctx)
	_, err := n.record(ctx, w, "restart-old-primary", results.PhaseStop, []string{old}, func(f *results.Fault) error {
		f.Primary = newPrimary
		f.Detail = fmt.Sprintf("started %s again; %s rejoins it", old, m.Manager())
		if err := n.c.Start(hctx, old); err != nil {
			return err
		}
		return n.verifyUp(hctx, f, old)
	})
	return err
}

// managerHealthy records the manager's own health check before a fault or
// after its heal: every node running and following the primary it names.
func (n *Nemesis) managerHealthy(ctx context.Context, w *window, m cluster.Manager, when string) (bool, error) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.WaitHealthy)
	defer cancel()
	return n.record(ctx, w, "health", results.PhaseInfo, nil, func(f *results.Fault) error {
		v, err := m.AwaitHealthy(hctx)
		f.Primary, f.Detail = v.Primary, fmt.Sprintf("health check %s the fault, %s: %s", when, m.Manager(), v)
		if v.Primary != "" && v.Primary != n.topo.Primary() {
			n.switchClients(w, v.Primary)
		}
		if err != nil {
			return fmt.Errorf("health check %s the fault: %w", when, err)
		}
		addVerified(f, m.Manager()+" reports every node running and following "+v.Primary)
		return nil
	})
}
