package harness

import (
	"context"
	"fmt"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

// managerPoll is how often the harness asks an HA manager which node is
// the primary (what a client router such as HAProxy on Patroni's /primary
// does every few hundred milliseconds).
const managerPoll = 200 * time.Millisecond

// managed is the cluster's HA manager, when it has one.
func (r *runner) managed() (cluster.Manager, bool) {
	m, ok := r.c.(cluster.Manager)
	return m, ok
}

// recordManagerInfo puts the manager and its effective settings in
// test.json's extra fields (and so in the report; saveInfo writes them).
func (r *runner) recordManagerInfo(m cluster.Manager) {
	for k, v := range r.t.Spec.Manager.Settings() {
		r.info.Extra[k] = v
	}
	r.info.Extra["manager_version"] = m.Manager()
}

// startFollowing runs followManager until the returned function is
// called; that function waits until it has stopped, so that nothing is
// recorded after it returns. It is idempotent.
func (r *runner) startFollowing(ctx context.Context, m cluster.Manager) func() {
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.followManager(fctx, m)
	}()
	r.stopFollowing = func() {
		cancel()
		<-done
	}
	return r.stopFollowing
}

// followManager points the clients at the node the manager names primary,
// following it after a failover, and records every change of the
// manager's account (primary, timeline, synchronous standbys, node states)
// as a "manager" step of the nemesis process, so that the report shows the
// manager's decisions beside the faults. It runs until ctx ends.
func (r *runner) followManager(ctx context.Context, m cluster.Manager) {
	tk := time.NewTicker(managerPoll)
	defer tk.Stop()
	last := ""
	for {
		vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		v, err := m.View(vctx)
		cancel()
		if err == nil {
			if v.Primary != "" && v.Primary != r.topo.Primary() {
				r.topo.SetPrimary(v.Primary)
			}
			if s := v.String(); s != last {
				last = s
				if rerr := r.recordManager(m, v); rerr != nil {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// recordManager writes one observation of the manager.
func (r *runner) recordManager(m cluster.Manager, v cluster.ManagerView) error {
	f := &results.Fault{Kind: "manager", Phase: results.PhaseInfo, Primary: v.Primary, Detail: m.Manager() + ": " + v.String()}
	inv, err := r.hist.Append(results.Op{Process: results.NemesisProcess, Type: results.Invoke, F: "manager",
		Workload: results.WorkloadNemesis, Fault: &results.Fault{Kind: "manager", Phase: results.PhaseInfo}})
	if err != nil {
		return err
	}
	comp := results.Op{Process: results.NemesisProcess, Type: results.OK, F: "manager", Workload: results.WorkloadNemesis, Fault: f}
	comp.Time = r.hist.Now()
	comp.Latency = comp.Time - inv.Time
	_, err = r.hist.Append(comp)
	return err
}

// settleManaged is the settle step under a manager: resume, heal and
// start what is down, then wait for the manager to bring every node back;
// the harness repairs nothing itself.
func (r *runner) settleManaged(ctx context.Context, m cluster.Manager) (cluster.RepairResult, error) {
	rep, v, err := cluster.SettleManaged(ctx, r.c, m, ManagerSettleWait)
	rep.Actions = append(rep.Actions, m.Manager()+": "+v.String())
	return rep, err
}

// validateManaged refuses what a managed run cannot do.
func (t *Test) validateManaged() []string {
	if !t.Spec.Manager.Managed() {
		return nil
	}
	if t.Failover.Mode != nemesis.FailoverExternal {
		return []string{fmt.Sprintf("--failover %s: with --manager %s the manager decides the failover (external)", t.Failover, t.Spec.Manager.Name)}
	}
	return nil
}
