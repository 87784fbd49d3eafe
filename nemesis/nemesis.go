package nemesis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

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
	Faults    []Fault
	Interval  time.Duration
	Failover  Policy
	Seed      int64
	TimeLimit time.Duration
	// WaitHealthy bounds the wait for all standbys to stream in sync again
	// after each heal (default 60 s).
	WaitHealthy time.Duration
}

// Nemesis runs the plan against a cluster and records every step.
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

// New prepares a nemesis; Plan(cfg...) is fixed here.
func New(c cluster.Cluster, cfg Config, rec Recorder, topo Topology) *Nemesis {
	if cfg.WaitHealthy == 0 {
		cfg.WaitHealthy = 60 * time.Second
	}
	return &Nemesis{c: c, cfg: cfg, rec: rec, topo: topo, now: "waiting",
		plan: Plan(cfg.Seed, cfg.Faults, cfg.Interval, cfg.TimeLimit)}
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

// Errors are the fault steps that failed (each is also in the history).
func (n *Nemesis) Errors() []error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]error(nil), n.errs...)
}

// ErrHistory wraps a failure to record: the run cannot go on without its
// history.
var ErrHistory = errors.New("nemesis: cannot record")

// Run follows the plan from start (the run's start time) until the plan
// ends or ctx is cancelled. A fault whose window is open when ctx ends is
// still healed. A failed step is recorded and the run goes on; Run returns
// an error only when the history cannot be written or the cluster cannot
// be brought back to health between faults.
func (n *Nemesis) Run(ctx context.Context, start time.Time) error {
	for _, st := range n.plan {
		if ctx.Err() != nil {
			break // the health wait ran past the time limit: no new fault
		}
		wait := time.Until(start.Add(st.At))
		if wait > 0 {
			select {
			case <-ctx.Done():
				n.setNow("done")
				return nil
			case <-time.After(wait):
			}
		}
		if err := n.strike(ctx, st); err != nil {
			return err
		}
	}
	n.setNow("done")
	return nil
}

// window is one open fault window.
type window struct {
	id    int
	kind  string
	heals []func(ctx context.Context) error
}

func (n *Nemesis) open(kind string) *window {
	n.mu.Lock()
	n.nextID++
	id := n.nextID
	n.mu.Unlock()
	return &window{id: id, kind: kind}
}

// record writes an invoke, runs fn, and writes its completion (ok, or info
// with the error: a fault step that failed may have half happened).
func (n *Nemesis) record(ctx context.Context, w *window, f, phase string, targets []string, fn func(fault *results.Fault) error) error {
	fault := &results.Fault{ID: w.id, Kind: w.kind, Phase: phase, Targets: targets}
	inv := results.Op{Process: results.NemesisProcess, Type: results.Invoke, F: f, Workload: results.WorkloadNemesis,
		Fault: &results.Fault{ID: w.id, Kind: w.kind, Phase: phase, Targets: targets}}
	invOp, err := n.rec.Append(inv)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrHistory, err)
	}
	ferr := fn(fault)
	fault.Nodes = cluster.NodeStates(context.WithoutCancel(ctx), n.c)
	for _, s := range fault.Nodes {
		if s.Role == string(cluster.Primary) {
			if rs, err := cluster.Replication(context.WithoutCancel(ctx), n.c, s.Node); err == nil {
				fault.Replication = rs
			}
			break
		}
	}
	comp := results.Op{Process: results.NemesisProcess, Type: results.OK, F: f, Workload: results.WorkloadNemesis, Fault: fault}
	if ferr != nil {
		comp.Type = results.Info
		comp.Error = ferr.Error()
		n.mu.Lock()
		n.errs = append(n.errs, fmt.Errorf("%s %s: %w", f, phase, ferr))
		n.mu.Unlock()
	}
	t := n.rec.Now()
	comp.Time = t
	comp.Latency = t - invOp.Time
	if _, err := n.rec.Append(comp); err != nil {
		return fmt.Errorf("%w: %v", ErrHistory, err)
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

// strike runs one step: open the window, hold it, heal it, and wait until
// the cluster is healthy again before the next step.
func (n *Nemesis) strike(ctx context.Context, st Step) error {
	primary, standbys := n.roles(context.WithoutCancel(ctx))
	w := n.open(st.Fault.Kind)
	n.setNow(fmt.Sprintf("%s (window %d)", st.Fault, w.id))
	if primary == "" {
		return n.record(ctx, w, st.Fault.Kind, results.PhaseInfo, nil, func(*results.Fault) error {
			return fmt.Errorf("no primary to aim at: skipped")
		})
	}
	var err error
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
	default:
		err = fmt.Errorf("%w: unknown fault %q", ErrConfig, st.Fault.Kind)
	}
	if err != nil {
		return err
	}
	n.setNow("waiting for the cluster to be healthy")
	err = n.waitHealthy(ctx, w)
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

// killPrimary kills the primary (after before, when set), fails over as
// the policy says, holds, runs beforeRecover (when set: the heal of a cut
// that must come before the old primary can reach the new one), and closes
// the window by rejoining or restarting the old primary.
func (n *Nemesis) killPrimary(ctx context.Context, w *window, st Step, primary string, standbys []string, before, beforeRecover func(ctx context.Context) error) error {
	if err := n.record(ctx, w, KillPrimary, results.PhaseStart, []string{primary}, func(f *results.Fault) error {
		if before != nil {
			if err := before(ctx); err != nil {
				return err
			}
		}
		return n.c.Kill(context.WithoutCancel(ctx), primary)
	}); err != nil {
		return err
	}
	if n.afterKill != nil {
		if err := n.afterKill(context.WithoutCancel(ctx)); err != nil {
			return err
		}
	}
	newPrimary, switchLSN := "", ""
	switch n.cfg.Failover.Mode {
	case FailoverAuto, FailoverPromote:
		force := ""
		if n.cfg.Failover.Mode == FailoverPromote {
			force = n.cfg.Failover.Node
			if force == "lagging" {
				force = n.leastAdvanced(context.WithoutCancel(ctx), primary, standbys)
			}
		}
		if err := n.record(ctx, w, "failover", results.PhaseStep, []string{primary}, func(f *results.Fault) error {
			res, err := cluster.Promote(context.WithoutCancel(ctx), n.c, primary, force)
			f.Primary, f.Durations = res.New, durs(res.Durations)
			f.Detail = fmt.Sprintf("promoted %s (forced: %v); sync list %q", res.New, res.Forced, res.Sync)
			if res.New != "" && err == nil {
				newPrimary, switchLSN = res.New, res.SwitchLSN
				n.topo.SetPrimary(res.New)
			}
			return err
		}); err != nil {
			return err
		}
		if newPrimary != "" {
			if err := n.record(ctx, w, "repoint", results.PhaseStep, nil, func(f *results.Fault) error {
				followers, rewound, err := cluster.Repoint(context.WithoutCancel(ctx), n.c, primary, newPrimary, switchLSN)
				f.Primary, f.Targets = newPrimary, followers
				f.Detail = fmt.Sprintf("re-pointed %s at %s", strings.Join(followers, ", "), newPrimary)
				if len(rewound) > 0 {
					f.Detail += fmt.Sprintf("; %s could not follow (it had WAL %s never received) and was rewound", strings.Join(rewound, ", "), newPrimary)
				}
				return err
			}); err != nil {
				return err
			}
		}
	case FailoverExternal:
		if m, ok := n.managed(); ok {
			p, took, err := n.awaitManager(ctx, w, m, primary)
			if err != nil {
				return err
			}
			newPrimary, st.Hold = p, max(0, st.Hold-took)
			break
		}
		if err := n.record(ctx, w, "await-primary", results.PhaseStep, nil, func(f *results.Fault) error {
			deadline := time.Now().Add(st.Hold)
			for time.Now().Before(deadline) {
				if p, err := cluster.FindPrimary(ctx, n.c); err == nil && p != primary {
					newPrimary, f.Primary = p, p
					n.topo.SetPrimary(p)
					return nil
				}
				time.Sleep(100 * time.Millisecond)
			}
			return fmt.Errorf("no new primary within %v", st.Hold)
		}); err != nil {
			return err
		}
	}
	n.setNow(fmt.Sprintf("%s: %s down", st.Fault, primary))
	hold(ctx, st.Hold)
	hctx := context.WithoutCancel(ctx)
	if beforeRecover != nil {
		if err := beforeRecover(hctx); err != nil {
			return err
		}
	}
	if m, ok := n.managed(); ok {
		return n.restartOld(ctx, w, m, primary, newPrimary)
	}
	if newPrimary == "" {
		return n.record(ctx, w, "restart-old-primary", results.PhaseStop, []string{primary}, func(f *results.Fault) error {
			f.Primary = primary
			return n.c.Start(hctx, primary)
		})
	}
	return n.record(ctx, w, "rejoin", results.PhaseStop, []string{primary}, func(f *results.Fault) error {
		res, err := cluster.RejoinOld(hctx, n.c, primary, newPrimary)
		f.Primary, f.Durations = newPrimary, durs(res.Durations)
		f.Detail = fmt.Sprintf("rejoined %s to %s with pg_rewind; sync list %q", primary, newPrimary, res.Sync)
		return err
	})
}

// lagThenKill congests the links so that the standbys fall behind, kills
// the primary while they are behind, lifts the limit and fails over.
func (n *Nemesis) lagThenKill(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	shaper, ok := n.c.(cluster.LinkShaper)
	if !ok {
		return n.record(ctx, w, LagThenKill, results.PhaseInfo, nil, func(*results.Fault) error {
			return fmt.Errorf("backend %s cannot shape links: skipped", n.c.Backend())
		})
	}
	hctx := context.WithoutCancel(ctx)
	if err := n.record(ctx, w, "congest", results.PhaseStart, standbys, func(f *results.Fault) error {
		f.Detail = "links between nodes limited to " + LagRate
		return shaper.ShapeLinks(hctx, LagRate)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold/2)
	sub := st
	sub.Hold = st.Hold / 2
	// The kill opens its own window; the limit is lifted right after the
	// kill, before the failover, so recovery runs at full speed.
	kw := n.open(KillPrimary)
	n.afterKill = func(ctx context.Context) error {
		return n.record(ctx, w, "uncongest", results.PhaseStop, standbys, func(*results.Fault) error {
			return shaper.ShapeLinks(hctx, "")
		})
	}
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
		return n.record(ctx, w, KillStandby, results.PhaseInfo, nil, func(*results.Fault) error { return fmt.Errorf("no standby: skipped") })
	}
	if err := n.record(ctx, w, KillStandby, results.PhaseStart, []string{target}, func(*results.Fault) error {
		return n.c.Kill(context.WithoutCancel(ctx), target)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold)
	return n.record(ctx, w, "start", results.PhaseStop, []string{target}, func(*results.Fault) error {
		return n.c.Start(context.WithoutCancel(ctx), target)
	})
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
	hctx := context.WithoutCancel(ctx)
	if st.Fault.Kind == Pause {
		if err := n.record(ctx, w, Pause, results.PhaseStart, []string{target}, func(*results.Fault) error {
			return n.c.Pause(hctx, target)
		}); err != nil {
			return err
		}
		hold(ctx, st.Hold)
		return n.record(ctx, w, "resume", results.PhaseStop, []string{target}, func(*results.Fault) error {
			return n.c.Resume(hctx, target)
		})
	}
	if err := n.record(ctx, w, "stop", results.PhaseStart, []string{target}, func(*results.Fault) error {
		return n.c.Stop(hctx, target)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold/4)
	return n.record(ctx, w, "start", results.PhaseStop, []string{target}, func(*results.Fault) error {
		return n.c.Start(hctx, target)
	})
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

func (n *Nemesis) partition(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	g, targets := grudgeFor(st.Fault.Target, st.Pick, primary, standbys)
	if g == nil {
		return n.record(ctx, w, Partition, results.PhaseInfo, nil, func(*results.Fault) error { return fmt.Errorf("no standby: skipped") })
	}
	hctx := context.WithoutCancel(ctx)
	if err := n.record(ctx, w, Partition, results.PhaseStart, targets, func(f *results.Fault) error {
		f.Grudge = g
		return n.c.Partition(hctx, g)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold)
	return n.record(ctx, w, "heal", results.PhaseStop, targets, func(*results.Fault) error { return n.c.Heal(hctx) })
}

// cutOff handles the faults that first cut one standby off the primary:
// cancel-sync-wait, crash-while-waiting and cut-then-kill.
func (n *Nemesis) cutOff(ctx context.Context, w *window, st Step, primary string, standbys []string) error {
	s := pick(standbys, st.Pick)
	if s == "" {
		return n.record(ctx, w, st.Fault.Kind, results.PhaseInfo, nil, func(*results.Fault) error { return fmt.Errorf("no standby: skipped") })
	}
	hctx := context.WithoutCancel(ctx)
	g := cluster.Grudge{primary: {s}}
	if err := n.record(ctx, w, Partition, results.PhaseStart, []string{s}, func(f *results.Fault) error {
		f.Grudge = g
		f.Detail = fmt.Sprintf("%s cut off from %s for %s", s, primary, st.Fault)
		return n.c.Partition(hctx, g)
	}); err != nil {
		return err
	}
	hold(ctx, st.Hold/2)
	heal := func(ctx context.Context) error {
		return n.record(ctx, w, "heal", results.PhaseStop, []string{s}, func(*results.Fault) error { return n.c.Heal(hctx) })
	}
	switch st.Fault.Kind {
	case CancelSyncWait:
		if err := n.record(ctx, w, CancelSyncWait, results.PhaseStep, []string{primary}, func(f *results.Fault) error {
			pids, err := CancelSyncWaiters(hctx, n.c, primary)
			f.Detail = fmt.Sprintf("pg_cancel_backend on %d backend(s) waiting for SyncRep: %v", len(pids), pids)
			return err
		}); err != nil {
			return err
		}
		hold(ctx, st.Hold/2)
	case CrashWhileWaiting:
		if err := n.record(ctx, w, "crash-primary", results.PhaseStep, []string{primary}, func(f *results.Fault) error {
			waiting, _ := syncWaiters(hctx, n.c, primary)
			f.Detail = fmt.Sprintf("%d commit(s) waiting for SyncRep when %s was killed and restarted", len(waiting), primary)
			if err := n.c.Kill(hctx, primary); err != nil {
				return err
			}
			return n.c.Start(hctx, primary)
		}); err != nil {
			return err
		}
		hold(ctx, st.Hold/2)
	case CutThenKill:
		var before func(context.Context) error
		if st.Fault.Target == "cancel" {
			before = func(context.Context) error {
				_, err := CancelSyncWaiters(hctx, n.c, primary)
				return err
			}
		}
		// The kill opens a window of its own inside the cut's; the cut
		// heals before the old primary is rewound from the new one.
		sub := st
		sub.Hold = st.Hold / 2
		return n.killPrimary(ctx, n.open(KillPrimary), sub, primary, standbys, before, heal)
	}
	return heal(ctx)
}

// syncWaiters lists the backends of primary waiting for synchronous
// replication.
func syncWaiters(ctx context.Context, c cluster.Cluster, primary string) ([]int, error) {
	var pids []int
	conn, err := pgx.Connect(ctx, c.ConnString(primary, true))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' ORDER BY pid`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		pids = append(pids, p)
	}
	return pids, rows.Err()
}

// CancelSyncWaiters sends pg_cancel_backend to every backend of primary
// whose wait event is SyncRep and returns their PIDs: the documented way
// in which PostgreSQL makes a commit that a standby never received visible
// (and acknowledged to its client, with a warning).
func CancelSyncWaiters(ctx context.Context, c cluster.Cluster, primary string) ([]int, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(primary, true))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// OFFSET 0 keeps the planner from folding the filter into the call:
	// pg_cancel_backend must only ever see the waiters (not, say, this
	// very backend).
	rows, err := conn.Query(ctx, `SELECT pid FROM (SELECT pid FROM pg_stat_activity
		WHERE wait_event = 'SyncRep' AND pid <> pg_backend_pid() OFFSET 0) w
		WHERE pg_cancel_backend(pid) ORDER BY pid`)
	if err != nil {
		return nil, err
	}
	var pids []int
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		pids = append(pids, p)
	}
	return pids, rows.Err()
}

// waitHealthy records how the cluster came back after window w: every node
// up, one primary, every standby streaming from it (in sync when the sync
// list asks), as the harness knows the primary.
func (n *Nemesis) waitHealthy(ctx context.Context, w *window) error {
	if m, ok := n.managed(); ok {
		return n.managerHealthy(ctx, w, m)
	}
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.WaitHealthy)
	defer cancel()
	return n.record(ctx, w, "health", results.PhaseInfo, nil, func(f *results.Fault) error {
		primary, err := cluster.FindPrimary(hctx, n.c)
		if err != nil {
			return err
		}
		f.Primary = primary
		if primary != n.topo.Primary() {
			n.topo.SetPrimary(primary)
		}
		var standbys []string
		for _, x := range n.c.Nodes() {
			if x != primary {
				standbys = append(standbys, x)
			}
		}
		sync := false
		if cur, err := currentSync(hctx, n.c, primary); err == nil && cur != "" {
			sync = true
		}
		return cluster.WaitStreaming(hctx, n.c, primary, standbys, sync)
	})
}

func currentSync(ctx context.Context, c cluster.Cluster, node string) (string, error) {
	conn, err := pgx.Connect(ctx, c.ConnString(node, true))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var s string
	err = conn.QueryRow(ctx, "SHOW synchronous_standby_names").Scan(&s)
	return s, err
}
