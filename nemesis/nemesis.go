package nemesis

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// Recorder appends operations to the history (results.Writer satisfies it).
type Recorder interface {
	Append(op results.Op) (results.Op, error)
	Now() int64
}

// Topology is the harness's view of which node takes writes. The nemesis
// updates it after a failover; clients read it before each write.
type Topology interface {
	Primary() string
	SetPrimary(node string)
}

// Config is the nemesis of one run.
type Config struct {
	Faults   []Fault
	Interval time.Duration
	Failover Policy
	// Sequence, when not empty, replaces the seeded plan of Faults: its
	// steps run once, in order, from the first interval on.
	Sequence  Sequence
	Seed      int64
	TimeLimit time.Duration
	// Overrun is how far past TimeLimit the run lets the nemesis go so
	// that the steps planned inside the time limit happen (a slow health
	// check or failover delays the steps after it). It only names the
	// allowance in the history: the context given to Run enforces it.
	Overrun time.Duration
	// WaitHealthy bounds the wait for the cluster to be healthy before
	// each fault and after each heal (default 60 s).
	WaitHealthy time.Duration
}

// Nemesis runs the plan against a cluster, verifies that every step took
// effect, and records every step. A step that fails or cannot be verified is
// recorded as an info completion with its error; the checker then judges the
// run unknown at best, because a fault that did not happen proves nothing.
type Nemesis struct {
	c    cluster.Cluster
	cfg  Config
	rec  Recorder
	topo Topology
	plan []Step

	// afterKill, when set, runs right after a kill of the primary and
	// before the failover (lag-then-kill lifts its limit there).
	afterKill func(ctx context.Context) error

	mu     sync.Mutex
	now    string // what is happening, for progress lines
	nextID int
	errs   []error
}

// New prepares a nemesis; its plan is fixed here.
func New(c cluster.Cluster, cfg Config, rec Recorder, topo Topology) *Nemesis {
	if cfg.WaitHealthy == 0 {
		cfg.WaitHealthy = 60 * time.Second
	}
	n := &Nemesis{c: c, cfg: cfg, rec: rec, topo: topo, now: "waiting"}
	if len(cfg.Sequence) > 0 {
		n.plan = []Step{{At: cfg.Interval / 5, Fault: Fault{Kind: KindSequence}, Pick: uint32(cfg.Seed)}}
	} else {
		n.plan = Plan(cfg.Seed, cfg.Faults, cfg.Interval, cfg.TimeLimit)
	}
	return n
}

// Plan is the schedule this nemesis follows.
func (n *Nemesis) Plan() []Step { return append([]Step(nil), n.plan...) }

// Current says what the nemesis is doing, for progress lines.
func (n *Nemesis) Current() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.now
}

func (n *Nemesis) setNow(s string) {
	n.mu.Lock()
	n.now = s
	n.mu.Unlock()
}

// Errors are the steps that failed or could not be verified, in order
// (each is also in the history, as an info completion with its error).
func (n *Nemesis) Errors() []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]error(nil), n.errs...)
}

// ErrHistory wraps a failure to record: the run cannot go on without its
// history.
var ErrHistory = errors.New("nemesis: cannot record")

// Run follows the plan from start (the run's start time) until the plan
// ends or ctx ends. Before each fault it checks that the cluster is
// healthy (waiting for it, up to Config.WaitHealthy) and skips the fault,
// recording why, when it is not. The harness gives Run a context that
// lasts the time limit plus Config.Overrun and keeps its clients running
// until Run returns, so a step the plan placed inside the time limit is
// struck even when the steps before it took longer than planned. A step
// that ctx ended before it was struck is recorded as not struck (an info
// completion: the faults check is then unknown, never valid). A fault
// whose window is open when ctx ends is still healed. A failed step is
// recorded and the run goes on; Run returns an error only when the
// history cannot be written.
func (n *Nemesis) Run(ctx context.Context, start time.Time) error {
	defer n.setNow("done")
	for i, st := range n.plan {
		if wait := time.Until(start.Add(st.At)); wait > 0 && ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return n.unstruck(ctx, n.plan[i:])
		}
		if err := n.strike(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// unstruck records each of steps as a fault that did not happen, saying
// why: the run was interrupted, or its overrun allowance ran out.
func (n *Nemesis) unstruck(ctx context.Context, steps []Step) error {
	for _, st := range steps {
		if err := n.skip(ctx, n.open(st.Fault.Kind), st.Fault.Kind, n.notStruck(ctx, st)); err != nil {
			return err
		}
	}
	return nil
}

// notStruck says why st was not struck once ctx has ended.
func (n *Nemesis) notStruck(ctx context.Context, st Step) string {
	why := "the run was interrupted"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		why = fmt.Sprintf("the time limit (%s) and the overrun allowance (%s) ran out first", n.cfg.TimeLimit, n.cfg.Overrun)
	}
	return fmt.Sprintf("planned at %.1fs, not struck: %s", st.At.Seconds(), why)
}

// window is one open fault window.
type window struct {
	id   int
	kind string
}

func (n *Nemesis) open(kind string) *window {
	n.mu.Lock()
	n.nextID++
	id := n.nextID
	n.mu.Unlock()
	return &window{id: id, kind: kind}
}

// record writes an invoke, runs fn, and writes its completion with every
// node's state and the primary's pg_stat_replication at that moment: ok, or
// info with the error when fn failed (a step that failed may have half
// happened). ok reports whether fn succeeded; err is set only when the
// history cannot be written.
func (n *Nemesis) record(ctx context.Context, w *window, f, phase string, targets []string, fn func(fault *results.Fault) error) (ok bool, err error) {
	fault := &results.Fault{ID: w.id, Kind: w.kind, Phase: phase, Targets: targets}
	inv := results.Op{Process: results.NemesisProcess, Type: results.Invoke, F: f, Workload: results.WorkloadNemesis,
		Fault: &results.Fault{ID: w.id, Kind: w.kind, Phase: phase, Targets: targets}}
	invOp, err := n.rec.Append(inv)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrHistory, err)
	}
	ferr := fn(fault)
	hctx := context.WithoutCancel(ctx)
	fault.Nodes = cluster.NodeStates(hctx, n.c)
	var prim []string
	for _, s := range fault.Nodes {
		if s.Role == string(cluster.Primary) {
			prim = append(prim, s.Node)
		}
	}
	if len(prim) > 0 {
		if rs, err := cluster.Replication(hctx, n.c, prim[0]); err == nil {
			fault.Replication = rs
		}
	}
	if len(prim) > 1 && ferr == nil {
		ferr = n.twoPrimaries(fault, prim)
	}
	comp := results.Op{Process: results.NemesisProcess, Type: results.OK, F: f, Workload: results.WorkloadNemesis, Fault: fault}
	if ferr != nil {
		comp.Type = results.Info
		comp.Error = ferr.Error()
		n.mu.Lock()
		n.errs = append(n.errs, fmt.Errorf("fault %d %s %s: %w", w.id, f, phase, ferr))
		n.mu.Unlock()
	}
	t := n.rec.Now()
	comp.Time = t
	comp.Latency = t - invOp.Time
	if _, err := n.rec.Append(comp); err != nil {
		return false, fmt.Errorf("%w: %w", ErrHistory, err)
	}
	return ferr == nil, nil
}

// twoPrimaries judges a step after which more than one node was out of
// recovery. strongcheck's own failover fences the old primary before it
// promotes, so two primaries after one of its steps mean the step went
// wrong: an error, and the step fails. When the failover is external (an
// HA manager decides it), two primaries are the manager's state, not a
// failed step: an isolated old primary that cannot reach its synchronous
// standbys stays up, its commits waiting, until the manager demotes it.
// The step's detail says so and the checks judge what it cost (a write
// acknowledged on the old primary after the promotion is a lost write, a
// read there a stale one); the faults check lists every such moment.
func (n *Nemesis) twoPrimaries(fault *results.Fault, prim []string) error {
	if n.cfg.Failover.Mode != FailoverExternal {
		return fmt.Errorf("%w: %v", cluster.ErrSplitBrain, prim)
	}
	seen := fmt.Sprintf("%s out of recovery at once (failover is external: the manager's state, judged by the checks)", strings.Join(prim, " and "))
	if fault.Detail == "" {
		fault.Detail = seen
	} else {
		fault.Detail += "; " + seen
	}
	return nil
}

// roles resolves the current primary and standbys by asking every node.
func (n *Nemesis) roles(ctx context.Context) (primary string, standbys []string) {
	for _, s := range cluster.NodeStates(ctx, n.c) {
		switch s.Role {
		case string(cluster.Primary):
			primary = s.Node
		case string(cluster.Standby):
			standbys = append(standbys, s.Node)
		}
	}
	sort.Strings(standbys)
	return primary, standbys
}

// rolesWait bounds how long strike asks again for the roles a health check
// has just seen: one node's answer can be lost (a port-forward that drops
// a connection on Kubernetes), and a fault aimed from a partial view would
// be skipped ("no primary to kill") or aimed wrong.
const rolesWait = 5 * time.Second

// settledRoles asks roles until it names a primary and want standbys, up to
// wait, and returns the last answer.
func settledRoles(roles func() (string, []string), want int, wait time.Duration) (string, []string) {
	deadline := time.Now().Add(wait)
	for {
		p, s := roles()
		if (p != "" && len(s) >= want) || time.Now().After(deadline) {
			return p, s
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func pick(cands []string, p uint32) string {
	if len(cands) == 0 {
		return ""
	}
	return cands[int(p)%len(cands)]
}

func durs(m map[string]time.Duration) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = int64(v)
	}
	return out
}

// strike runs one planned step: check the cluster's health, open the
// window, hold it, heal it, and wait until the cluster is healthy again.
func (n *Nemesis) strike(ctx context.Context, st Step) error {
	w := n.open(st.Fault.Kind)
	n.setNow(fmt.Sprintf("%s (window %d): health check", st.Fault, w.id))
	healthy, err := n.waitHealthy(ctx, w, "before")
	if err != nil || !healthy {
		// The step is not taken on a cluster that did not recover; the
		// failed health check in the history says why.
		return err
	}
	if ctx.Err() != nil {
		// The overrun ran out (or the run was interrupted) during the
		// health check: the clients are stopping, so a fault struck now
		// would have nothing to act on. Say that it did not happen.
		return n.skip(ctx, w, st.Fault.Kind, n.notStruck(ctx, st))
	}
	hctx := context.WithoutCancel(ctx)
	primary, standbys := settledRoles(func() (string, []string) { return n.roles(hctx) }, len(n.c.Nodes())-1, rolesWait)
	n.setNow(fmt.Sprintf("%s (window %d)", st.Fault, w.id))
	switch st.Fault.Kind {
	case KillPrimary:
		err = n.killPrimary(ctx, w, st, primary, standbys, nil, nil)
	case KillStandby:
		err = n.killStandby(ctx, w, st, standbys)
	case Restart, Pause:
		err = n.nodeFault(ctx, w, st, primary, standbys)
	case Partition:
		err = n.partition(ctx, w, st, primary, standbys)
	case CancelSyncWait, CrashWhileWaiting, CutThenKill:
		err = n.cutOff(ctx, w, st, primary, standbys)
	case LagThenKill:
		err = n.lagThenKill(ctx, w, st, primary, standbys)
	case StallCommit:
		err = n.stallCommits(ctx, w, st, primary, standbys)
	case KindSequence:
		err = n.runSequence(ctx, w, st)
	default:
		err = fmt.Errorf("%w: unknown fault %q", ErrConfig, st.Fault.Kind)
	}
	if err != nil || st.Fault.Kind == KindSequence {
		// What a user's sequence leaves broken is the settle step's to
		// repair, not a failed heal.
		return err
	}
	n.setNow("waiting for the cluster to be healthy")
	_, err = n.waitHealthy(ctx, w, "after")
	n.setNow("quiet")
	return err
}

// hold waits out the window (shortened if ctx ends: the heal still runs).
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitHealthy waits, up to Config.WaitHealthy, until the cluster is healthy
// (one primary, every node up and every standby streaming from it on its
// timeline, in the sync states its list asks for) and records the check as
// a step of window w: when is "before" the fault or "after" its heal. The
// topology follows the primary found. healthy is false when the wait ran out.
func (n *Nemesis) waitHealthy(ctx context.Context, w *window, when string) (healthy bool, err error) {
	if m, ok := n.managed(); ok {
		return n.managerHealthy(ctx, w, m, when)
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.WaitHealthy)
	defer cancel()
	return n.record(ctx, w, "health", results.PhaseInfo, nil, func(f *results.Fault) error {
		// A query that fails on the way (a connection dropped by a
		// port-forward) is asked again until the wait runs out: only a
		// cluster that stays unhealthy fails the check.
		for {
			err := n.healthOnce(hctx, w, f, when)
			if err == nil || hctx.Err() != nil {
				return err
			}
			hold(hctx, 100*time.Millisecond)
		}
	})
}

// healthOnce is one try of waitHealthy's check, recorded in f.
func (n *Nemesis) healthOnce(hctx context.Context, w *window, f *results.Fault, when string) error {
	f.Detail = "health check " + when + " the fault"
	primary, err := awaitPrimary(hctx, n.c)
	if err != nil {
		return fmt.Errorf("health check %s the fault: %w", when, err)
	}
	f.Primary = primary
	if primary != n.topo.Primary() {
		n.switchClients(w, primary)
	}
	var standbys []string
	for _, x := range n.c.Nodes() {
		if x != primary {
			standbys = append(standbys, x)
		}
	}
	sync, err := cluster.CurrentSync(hctx, n.c, primary)
	if err != nil {
		return fmt.Errorf("health check %s the fault: %w", when, err)
	}
	if err := cluster.WaitStreaming(hctx, n.c, primary, standbys, !sync.Async()); err != nil {
		return fmt.Errorf("health check %s the fault: %w", when, err)
	}
	f.Detail += fmt.Sprintf(": %s primary, %v streaming, sync list %q", primary, standbys, sync)
	addVerified(f, fmt.Sprintf("%s the only primary; %s stream from it on its timeline", primary, strings.Join(standbys, ", ")))
	return nil
}

// awaitPrimary waits until exactly one node is primary.
func awaitPrimary(ctx context.Context, c cluster.Cluster) (string, error) {
	for {
		p, err := cluster.FindPrimary(ctx, c)
		if err == nil {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// switchClients points the clients' writes at node and records the moment
// (an ok entry of process nemesis naming the new primary): from here on the
// checkers count node's reads as the primary's.
func (n *Nemesis) switchClients(w *window, node string) {
	n.topo.SetPrimary(node)
	t := n.rec.Now()
	// A switch that cannot be recorded leaves the timeline a step behind;
	// the step's own completion, which follows, records the primary too.
	_, _ = n.rec.Append(results.Op{Process: results.NemesisProcess, Type: results.OK, F: "switch-primary", Workload: results.WorkloadNemesis,
		Time: t, Fault: &results.Fault{ID: w.id, Kind: w.kind, Phase: results.PhaseInfo, Primary: node,
			Detail: "clients write to " + node + " from here on"}})
}
