package nemesis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// ErrNotVerified wraps every step that ran but could not be shown to have
// taken effect: the fault it meant did not (certainly) happen.
var ErrNotVerified = errors.New("fault did not take effect")

// verifyWithin bounds the wait for a fault to show (SIGSTOP takes effect
// when a process is next scheduled; a SIGKILLed process is gone once its
// parent reaps it).
const verifyWithin = 3 * time.Second

// sqlObserved is the backend as a cluster.SQLObserved when it is one and
// not also an Inspector (which sees more: processes, network paths).
func (n *Nemesis) sqlObserved() (cluster.SQLObserved, bool) {
	if _, ok := n.c.(cluster.Inspector); ok {
		return nil, false
	}
	o, ok := n.c.(cluster.SQLObserved)
	return o, ok
}

func (n *Nemesis) inspector() (cluster.Inspector, error) {
	in, ok := n.c.(cluster.Inspector)
	if !ok {
		return nil, fmt.Errorf("%w: the %s backend can observe neither processes and network paths nor replication through SQL, so no fault can be verified", ErrNotVerified, n.c.Backend())
	}
	return in, nil
}

// awaitProcesses polls node's processes until cond holds or verifyWithin
// passes, and returns the last state seen.
func (n *Nemesis) awaitProcesses(ctx context.Context, node string, cond func(cluster.ProcessState) bool) (cluster.ProcessState, bool, error) {
	in, err := n.inspector()
	if err != nil {
		return cluster.ProcessState{}, false, err
	}
	deadline := time.Now().Add(verifyWithin)
	for {
		ps, err := in.Processes(ctx, node)
		if err != nil {
			return ps, false, fmt.Errorf("%w: inspect %s: %w", ErrNotVerified, node, err)
		}
		if cond(ps) {
			return ps, true, nil
		}
		if time.Now().After(deadline) {
			return ps, false, nil
		}
		select {
		case <-ctx.Done():
			return ps, false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// verifyDown checks that node has no server process left and refuses
// connections.
func (n *Nemesis) verifyDown(ctx context.Context, f *results.Fault, node string) error {
	if o, ok := n.sqlObserved(); ok {
		return n.sqlDown(ctx, o, f, node)
	}
	ps, ok, err := n.awaitProcesses(ctx, node, cluster.ProcessState.Gone)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s still has server processes (%+v)", ErrNotVerified, node, ps)
	}
	if _, err := cluster.QueryState(ctx, n.c.ConnString(node, true)); err == nil {
		return fmt.Errorf("%w: %s has no server process but still answers queries", ErrNotVerified, node)
	}
	addVerified(f, node+": no server process left, connections refused")
	return nil
}

// verifyUp checks that node runs, unfrozen, and answers queries.
func (n *Nemesis) verifyUp(ctx context.Context, f *results.Fault, node string) error {
	if o, ok := n.sqlObserved(); ok {
		return n.sqlUp(ctx, o, f, node)
	}
	ps, ok, err := n.awaitProcesses(ctx, node, func(p cluster.ProcessState) bool { return p.Postmaster && p.Stopped == 0 })
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not running unfrozen (%+v)", ErrNotVerified, node, ps)
	}
	st, err := cluster.QueryState(ctx, n.c.ConnString(node, true))
	if err != nil {
		return fmt.Errorf("%w: %s runs but does not answer: %w", ErrNotVerified, node, err)
	}
	addVerified(f, fmt.Sprintf("%s: running (%d processes), answers as %s", node, ps.Running, st.Role))
	return nil
}

// verifyFrozen checks that every server process of node is stopped.
func (n *Nemesis) verifyFrozen(ctx context.Context, f *results.Fault, node string) error {
	if o, ok := n.sqlObserved(); ok {
		return n.sqlFrozen(ctx, o, f, node)
	}
	ps, ok, err := n.awaitProcesses(ctx, node, cluster.ProcessState.Frozen)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s is not frozen (%d running, %d stopped)", ErrNotVerified, node, ps.Running, ps.Stopped)
	}
	addVerified(f, fmt.Sprintf("%s: all %d server processes stopped", node, ps.Stopped))
	return nil
}

// verifyThawed checks that no server process of node is stopped.
func (n *Nemesis) verifyThawed(ctx context.Context, f *results.Fault, node string) error {
	if o, ok := n.sqlObserved(); ok {
		return n.sqlUp(ctx, o, f, node)
	}
	ps, ok, err := n.awaitProcesses(ctx, node, func(p cluster.ProcessState) bool { return p.Postmaster && p.Stopped == 0 })
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: %s still has %d stopped processes", ErrNotVerified, node, ps.Stopped)
	}
	addVerified(f, fmt.Sprintf("%s: %d server processes running again", node, ps.Running))
	return nil
}

// probe is one direction of a link and whether it carried a connection.
type probe struct {
	from, to string
	ok       bool
	err      error
}

// probeAll tries every ordered pair of nodes at once.
func (n *Nemesis) probeAll(ctx context.Context) ([]probe, error) {
	in, err := n.inspector()
	if err != nil {
		return nil, err
	}
	nodes := n.c.Nodes()
	var out []probe
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				out = append(out, probe{from: a, to: b})
			}
		}
	}
	var wg sync.WaitGroup
	for i := range out {
		wg.Go(func() { out[i].ok, out[i].err = in.Reachable(ctx, out[i].from, out[i].to) })
	}
	wg.Wait()
	return out, nil
}

// verifyLinks checks that the links g cuts carry nothing in either direction
// and every other link between nodes carries connections (g nil: a heal).
func (n *Nemesis) verifyLinks(ctx context.Context, f *results.Fault, g cluster.Grudge) error {
	if o, ok := n.sqlObserved(); ok {
		return n.sqlLinks(ctx, o, f, g)
	}
	probes, err := n.probeAll(ctx)
	if err != nil {
		return err
	}
	cut := map[[2]string]bool{}
	for _, p := range g.Pairs() {
		cut[p], cut[[2]string{p[1], p[0]}] = true, true
	}
	var wrong []string
	nCut := 0
	for _, p := range probes {
		want := !cut[[2]string{p.from, p.to}]
		switch {
		case p.err != nil:
			wrong = append(wrong, fmt.Sprintf("%s→%s: %v", p.from, p.to, p.err))
		case p.ok != want && want:
			wrong = append(wrong, fmt.Sprintf("%s→%s is cut", p.from, p.to))
		case p.ok != want:
			wrong = append(wrong, fmt.Sprintf("%s→%s still connects", p.from, p.to))
		case !want:
			nCut++
		}
	}
	if len(wrong) > 0 {
		return fmt.Errorf("%w: %s", ErrNotVerified, strings.Join(wrong, "; "))
	}
	if g == nil {
		addVerified(f, fmt.Sprintf("all %d directed links between nodes connect", len(probes)))
	} else {
		addVerified(f, fmt.Sprintf("%d directed links cut (connection attempts time out), the other %d connect", nCut, len(probes)-nCut))
	}
	return nil
}

// verifyPromoted checks that node is out of recovery, takes writes, and is
// the only primary.
func (n *Nemesis) verifyPromoted(ctx context.Context, f *results.Fault, node string) error {
	if err := cluster.VerifyPrimary(ctx, n.c, node); err != nil {
		return fmt.Errorf("%w: %w", ErrNotVerified, err)
	}
	p, err := cluster.FindPrimary(ctx, n.c)
	if err != nil {
		return fmt.Errorf("%w: after promoting %s: %w", ErrNotVerified, node, err)
	}
	if p != node {
		return fmt.Errorf("%w: promoted %s, but %s is the primary", ErrNotVerified, node, p)
	}
	addVerified(f, node+": out of recovery, commits a write, the only primary")
	return nil
}

// verifyStandbyOf checks that node streams from primary, which is the only
// primary.
func (n *Nemesis) verifyStandbyOf(ctx context.Context, f *results.Fault, node, primary string) error {
	if p, err := cluster.FindPrimary(ctx, n.c); err != nil || p != primary {
		return fmt.Errorf("%w: %s should be the only primary (found %q: %v)", ErrNotVerified, primary, p, err)
	}
	if !cluster.Follows(ctx, n.c, primary, node) {
		return fmt.Errorf("%w: %s does not stream from %s", ErrNotVerified, node, primary)
	}
	addVerified(f, fmt.Sprintf("%s: streams from %s, the only primary", node, primary))
	return nil
}

func addVerified(f *results.Fault, s string) {
	if f == nil {
		return
	}
	if f.Verified != "" {
		f.Verified += "; "
	}
	f.Verified += s
}
