package existing

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// Managed is a Cluster whose failovers are not strongcheck's: the user's
// HA manager promotes (--failover external) or nobody does (none). It
// implements cluster.Manager from what the servers say through SQL, so
// that the harness follows the primary it finds, closes a kill of the
// primary by starting the old one (the manager rejoins it, or not), and
// settles without changing any setting.
type Managed struct {
	*Cluster
}

// managerPoll is how often the Manager methods ask the servers again.
const managerPoll = 200 * time.Millisecond

// Manager implements cluster.Manager.
func (m *Managed) Manager() string {
	if m.opts.Failover == FailoverNone {
		return "no failover (nothing promotes; strongcheck watches)"
	}
	return "the cluster's own manager (external)"
}

// View implements cluster.Manager: the node out of recovery (when exactly
// one is), its timeline, every node's role, and the standbys its
// pg_stat_replication shows as sync or quorum.
func (m *Managed) View(ctx context.Context) (cluster.ManagerView, error) {
	v := cluster.ManagerView{Nodes: map[string]string{}}
	var prims []string
	for _, s := range cluster.NodeStates(ctx, m) {
		v.Nodes[s.Node] = s.Role
		if s.Role == string(cluster.Primary) {
			prims = append(prims, s.Node)
			v.Timeline = s.Timeline
		}
	}
	if len(prims) != 1 {
		return v, nil
	}
	v.Primary = prims[0]
	rs, err := cluster.Replication(ctx, m, v.Primary)
	if err != nil {
		return v, err
	}
	for _, r := range rs {
		if r.CommitsWait() {
			v.Sync = append(v.Sync, m.nodeOfApp(r.Name))
		}
	}
	sort.Strings(v.Sync)
	return v, nil
}

// nodeOfApp maps an application_name to its node (itself when none).
func (m *Managed) nodeOfApp(app string) string {
	for _, n := range m.nodes {
		if n.AppName() == app {
			return n.Name
		}
	}
	return app
}

// AwaitFailover implements cluster.Manager: it waits until a node other
// than old is the only primary and commits a write.
func (m *Managed) AwaitFailover(ctx context.Context, old string) (cluster.ManagerView, error) {
	var last cluster.ManagerView
	for {
		v, err := m.View(ctx)
		if err == nil {
			last = v
			if v.Primary != "" && v.Primary != old && cluster.VerifyPrimary(ctx, m, v.Primary) == nil {
				return v, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("no new primary in place of %s (last seen: %s): %w", old, last, ctx.Err())
		case <-time.After(managerPoll):
		}
	}
}

// AwaitHealthy implements cluster.Manager: it waits until one node is
// primary and every other node streams from it, on its timeline.
func (m *Managed) AwaitHealthy(ctx context.Context) (cluster.ManagerView, error) {
	var last cluster.ManagerView
	why := ""
	for {
		v, err := m.View(ctx)
		last = v
		if err == nil {
			why = m.unhealthy(ctx, v)
			if why == "" {
				return v, nil
			}
		} else {
			why = err.Error()
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("not healthy: %s: %w", why, ctx.Err())
		case <-time.After(managerPoll):
		}
	}
}

// unhealthy says why v is not a healthy cluster ("" when it is).
func (m *Managed) unhealthy(ctx context.Context, v cluster.ManagerView) string {
	if v.Primary == "" {
		return "no single primary: " + v.String()
	}
	rs, err := cluster.Replication(ctx, m, v.Primary)
	if err != nil {
		return err.Error()
	}
	var bad []string
	for _, n := range m.nodes {
		if n.Name == v.Primary {
			continue
		}
		if !slices.ContainsFunc(rs, func(r results.ReplicationState) bool { return r.Name == n.AppName() && r.State == "streaming" }) {
			bad = append(bad, n.Name+" not streaming")
			continue
		}
		st, err := cluster.QueryState(ctx, m.ConnString(n.Name, true))
		if err != nil || st.Timeline != v.Timeline {
			bad = append(bad, fmt.Sprintf("%s not on timeline %d", n.Name, v.Timeline))
		}
	}
	return strings.Join(bad, ", ")
}
