package harness

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/report"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// Errors of a run that are not the user's input. The CLI exits 255 for
// them; the history written so far is kept.
var (
	ErrInfra       = errors.New("harness or infrastructure error")
	ErrInterrupted = errors.New("interrupted")
)

// Outcome is what a run produced.
type Outcome struct {
	Run    results.Run
	Result *checker.Result
	// Err is a harness error after the run started (the result, when
	// present, judges what was recorded).
	Err error
}

// topology is the harness's view of the primary, shared by clients and
// the nemesis.
type topology struct {
	primary atomic.Pointer[string]
	nodes   []string
}

func (t *topology) Primary() string {
	if p := t.primary.Load(); p != nil {
		return *p
	}
	return ""
}

func (t *topology) SetPrimary(n string) { t.primary.Store(&n) }

// Run executes one test. Errors in t are returned before anything starts
// (wrapping ErrUsage). Once the run has started, Run always returns an
// Outcome with the store folder; Outcome.Err says what went wrong if the
// harness could not finish, and the history is kept.
func Run(ctx context.Context, t Test, be Backend) (Outcome, error) {
	t.Defaults()
	if err := t.Validate(); err != nil {
		return Outcome{}, err
	}
	wls := make([]workload.Workload, 0, len(t.Workloads))
	opts := t.Options
	opts.Grantee = "strongcheck"
	if be.ClientRole != "" {
		opts.Grantee = be.ClientRole
	}
	for _, name := range t.Workloads {
		w, err := workload.New(name, opts)
		if err != nil {
			return Outcome{}, fmt.Errorf("%w: %w", ErrUsage, err)
		}
		wls = append(wls, w)
	}
	if t.KeepCluster && be.Leave == nil {
		return Outcome{}, fmt.Errorf("%w: the %s backend cannot leave its cluster running", ErrUsage, be.Name)
	}
	start := time.Now()
	run, err := t.Store.NewRun(t.Name, start)
	if err != nil {
		return Outcome{}, fmt.Errorf("%w: store %s: %w", ErrUsage, t.Store.Dir(), err)
	}
	out := Outcome{Run: run}
	r := &runner{t: t, be: be, run: run, wls: wls, start: start}
	out.Err = r.execute(ctx)
	out.Result = r.result
	return out, nil
}

type runner struct {
	t     Test
	be    Backend
	run   results.Run
	wls   []workload.Workload
	start time.Time

	c      cluster.Cluster
	hist   *results.Writer
	lag    *results.LagWriter
	topo   *topology
	nem    *nemesis.Nemesis
	info   *results.TestInfo
	result *checker.Result

	ok, fail, infoN atomic.Int64
	nextProc        atomic.Int64
	// stopFollowing ends the watch of an HA manager (managed clusters).
	stopFollowing func()
}

func (r *runner) progress(line string, final bool) {
	if r.t.Progress != nil {
		r.t.Progress(line, final)
	}
}

func (r *runner) execute(ctx context.Context) (err error) {
	r.info = r.newTestInfo()
	if err := r.saveInfo(); err != nil {
		return err
	}
	if r.hist, err = results.Create(r.run.History(), r.start); err != nil {
		return fmt.Errorf("%w: %w", ErrInfra, err)
	}
	histClosed := false
	defer func() {
		if !histClosed {
			r.hist.Close()
		}
	}()
	if r.lag, err = results.CreateLag(r.run.Lag()); err != nil {
		return fmt.Errorf("%w: %w", ErrInfra, err)
	}
	defer r.lag.Close()

	r.progress(fmt.Sprintf("bringing up the %s cluster (%s)", r.be.Name, strings.Join(r.t.Spec.NodeNames(), ", ")), false)
	c, err := r.be.Up(ctx, r.t.Spec, filepath.Join(r.run.Dir, "cluster"))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		return fmt.Errorf("%w: cluster up: %w", ErrInfra, err)
	}
	r.c = c
	defer r.release(ctx, c, &err)
	if stop := r.adopt(ctx, c); stop != nil {
		defer stop()
	}
	if err := r.setup(ctx); err != nil {
		// What adopt learnt is kept though the set-up failed.
		return errors.Join(err, r.saveInfo())
	}
	histClosed = true // phases closes it
	return r.phases(ctx)
}

// newTestInfo is test.json as the run starts.
func (r *runner) newTestInfo() *results.TestInfo {
	info := &results.TestInfo{
		Name: r.t.Name, Command: r.t.Command, Seed: r.t.Seed, StartTime: r.start,
		StrongcheckVersion: r.t.Version, Backend: r.be.Name, Nodes: r.t.Spec.NodeNames(),
		Settings: r.t.Spec.Effective(), Workloads: r.t.Workloads, Failover: r.t.Failover.String(),
		Sequence: r.t.Sequence.String(), Model: string(r.t.Model),
		TimeLimitNS: int64(r.t.TimeLimit), OverrunNS: int64(max(r.t.Overrun, 0)), Concurrency: r.t.Concurrency, Host: hostLine(),
		Extra: map[string]string{
			"rate": fmt.Sprint(r.t.Rate), "read_from": r.t.ReadFrom, "op_timeout": r.t.OpTimeout.String(),
			"nemesis_interval": r.t.Interval.String(), "check_timeout": r.t.CheckTimeout.String(),
			"link_rate": r.t.Spec.LinkRate,
		},
	}
	r.t.isolationInfo(info)
	for _, f := range r.t.Faults {
		info.Nemeses = append(info.Nemeses, f.String())
	}
	return info
}

// release collects the nodes' logs, then tears the cluster down or, when
// the user asked, leaves it running; its error becomes *err unless the run
// already failed.
func (r *runner) release(ctx context.Context, c cluster.Cluster, err *error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	if lerr := c.CollectLogs(cctx, r.run.LogsDir()); lerr != nil && *err == nil {
		*err = fmt.Errorf("%w: collect logs: %w", ErrInfra, lerr)
	}
	if r.t.KeepCluster {
		note, lerr := r.be.Leave(c)
		if lerr != nil && *err == nil {
			*err = fmt.Errorf("%w: leave the cluster running: %w", ErrInfra, lerr)
		}
		if lerr == nil {
			r.progress("cluster left running: "+note, true)
		}
		return
	}
	if cerr := c.Close(cctx); cerr != nil && *err == nil {
		*err = fmt.Errorf("%w: tear down: %w", ErrInfra, cerr)
	}
}

// adopt records what the cluster says of itself (PostgreSQL's version, the
// manager) and takes its primary as the first; with a manager it follows
// the manager's primary until the returned stop is called (nil without).
func (r *runner) adopt(ctx context.Context, c cluster.Cluster) (stop func()) {
	if r.be.PostgresVersion != nil {
		r.info.PostgresVersion = r.be.PostgresVersion(c)
	}
	r.recordDiscovery(c)
	r.topo = &topology{nodes: c.Nodes()}
	r.topo.SetPrimary(c.Nodes()[0])
	m, ok := r.managed()
	if !ok {
		return nil
	}
	r.recordManagerInfo(m)
	if v, err := m.View(ctx); err == nil && v.Primary != "" {
		r.topo.SetPrimary(v.Primary)
	}
	return r.startFollowing(ctx, m)
}

// phases drives the clients, settles the cluster, closes the history and
// checks it; an interruption ends the run with ErrInterrupted once what
// was recorded is checked.
func (r *runner) phases(ctx context.Context) error {
	runErr := r.measuredDrive(ctx)
	interrupted := ctx.Err() != nil
	if !interrupted && runErr == nil {
		if err := r.settle(ctx); err != nil {
			runErr = err
		}
	}
	r.info.EndTime = time.Now()
	if err := r.saveInfo(); err != nil && runErr == nil {
		runErr = err
	}
	if r.stopFollowing != nil {
		r.stopFollowing()
	}
	if err := r.hist.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("%w: %w", ErrInfra, err)
	}
	if err := r.check(context.WithoutCancel(ctx)); err != nil && runErr == nil {
		runErr = err
	}
	if interrupted && runErr == nil {
		runErr = ErrInterrupted
	}
	return runErr
}

func hostLine() string {
	h, _ := os.Hostname()
	k, _ := exec.Command("uname", "-r").Output()
	return fmt.Sprintf("%s, linux %s, %d CPUs", h, strings.TrimSpace(string(k)), runtime.NumCPU())
}

// setup creates every workload's tables on the primary and records the
// set-up operations.
func (r *runner) setup(ctx context.Context) error {
	p := r.topo.Primary()
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	conn, err := workload.Connect(sctx, r.c.ConnString(p, true))
	if err != nil {
		return fmt.Errorf("%w: set-up: %w", ErrInfra, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, w := range r.wls {
		ops, err := w.Setup(sctx, conn)
		if err != nil {
			return fmt.Errorf("%w: set-up of %s: %w", ErrInfra, w.Name(), err)
		}
		for _, op := range ops {
			op.Process, op.Node = results.HarnessProcess, p
			if _, err := r.hist.Append(op); err != nil {
				return fmt.Errorf("%w: %w", ErrInfra, err)
			}
		}
	}
	// The run starts from a replicated state, also with asynchronous
	// replication: every standby has replayed the set-up.
	var standbys []string
	for _, n := range r.c.Nodes() {
		if n != p {
			standbys = append(standbys, n)
		}
	}
	if err := cluster.WaitReplayed(sctx, r.c, p, standbys); err != nil {
		return fmt.Errorf("%w: set-up: %w", ErrInfra, err)
	}
	// The replication settings as the primary runs them (an HA manager
	// sets its own): what the checkers judge the run by.
	r.recordRunningSettings(sctx, p)
	if err := r.saveInfo(); err != nil {
		return err
	}
	// The roles the clients start with, for the checkers' role timeline.
	topo := results.Op{Process: results.HarnessProcess, Type: results.OK, F: results.FTopology, Workload: results.WorkloadNemesis,
		Fault: &results.Fault{Kind: results.FTopology, Phase: results.PhaseInfo, Primary: p, Nodes: cluster.NodeStates(sctx, r.c),
			Detail: r.discoveryDetail()}}
	if rs, err := cluster.Replication(sctx, r.c, p); err == nil {
		topo.Fault.Replication = rs
	}
	if _, err := r.hist.Append(topo); err != nil {
		return fmt.Errorf("%w: %v", ErrInfra, err)
	}
	return nil
}

// clientGCPercent is the garbage collector's target while the clients run.
const clientGCPercent = 400

// measuredDrive runs drive on ClientCPUs threads and records what the
// harness process consumed meanwhile in test.json's harness field.
func (r *runner) measuredDrive(ctx context.Context) error {
	if n := r.t.clientCPUs(r.be); n > 0 {
		prev := runtime.GOMAXPROCS(n)
		defer runtime.GOMAXPROCS(prev)
	}
	if os.Getenv("GOGC") == "" {
		// The clients' heap is small and short-lived (nothing of the
		// history stays in memory): collecting it a quarter as often
		// saves CPU the cluster on the same cores can use.
		prev := debug.SetGCPercent(clientGCPercent)
		defer debug.SetGCPercent(prev)
	}
	cpu0, t0, ops0 := processCPU(), time.Now(), r.completed()
	err := r.drive(ctx)
	r.info.Harness = &results.HarnessUse{DriveNS: int64(time.Since(t0)), CPUNS: int64(processCPU() - cpu0),
		Ops: r.completed() - ops0, GoMaxProcs: runtime.GOMAXPROCS(0), PeakRSSBytes: peakRSS()}
	return err
}

// drive runs the clients, the nemesis, the lag sampler and the progress
// reporter for the time limit, and past it while the nemesis finishes the
// steps planned inside it (up to the overrun allowance).
func (r *runner) drive(ctx context.Context) error {
	overrun := max(r.t.Overrun, 0)
	nctx, ncancel := context.WithTimeout(ctx, r.t.TimeLimit+overrun)
	defer ncancel()
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	r.nem = nemesis.New(r.c, nemesis.Config{Faults: r.t.Faults, Sequence: r.t.Sequence, Interval: r.t.Interval,
		Failover: r.t.Failover, Seed: r.t.Seed, TimeLimit: r.t.TimeLimit, Overrun: overrun}, r.hist, r.topo)
	r.nextProc.Store(int64(r.t.Concurrency))
	var limiter <-chan time.Time
	if r.t.Rate > 0 {
		tk := time.NewTicker(time.Duration(float64(time.Second) / r.t.Rate))
		defer tk.Stop()
		limiter = tk.C
	}
	g, gctx := errgroup.WithContext(cctx)
	for i := 0; i < r.t.Concurrency; i++ {
		g.Go(func() error { return r.worker(gctx, i, limiter) })
	}
	nemDone := make(chan error, 1)
	driveStart := time.Now()
	go func() {
		// The nemesis heals its open window even after its context ends.
		// Its plan counts from the clients' start, like the time limit,
		// not from the run's (which includes bringing the cluster up).
		nemDone <- r.nem.Run(nctx, driveStart)
	}()
	auxCtx, auxCancel := context.WithCancel(ctx)
	var aux sync.WaitGroup
	aux.Add(2)
	go func() { defer aux.Done(); r.sampleLag(auxCtx) }()
	go func() { defer aux.Done(); r.report(auxCtx) }()
	nerr := r.untilDone(gctx, driveStart, nemDone)
	ccancel()
	werr := g.Wait()
	auxCancel()
	aux.Wait()
	r.progress(r.progressLine(), true)
	for _, e := range r.nem.Errors() {
		r.progress("fault step did not take effect: "+e.Error(), true)
	}
	if werr != nil && !errors.Is(werr, context.Canceled) && !errors.Is(werr, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrInfra, werr)
	}
	if nerr != nil {
		return fmt.Errorf("%w: %w", ErrInfra, nerr)
	}
	return nil
}

// untilDone waits until the time limit has passed and the nemesis is done
// (its context bounds it by the overrun allowance), or the clients failed,
// and records in test.json how far the run went past its time limit. It
// returns the nemesis's error; after a client's failure it still waits
// for the nemesis to heal what it opened.
func (r *runner) untilDone(clients context.Context, start time.Time, nemDone <-chan error) error {
	limit := time.NewTimer(time.Until(start.Add(r.t.TimeLimit)))
	defer limit.Stop()
	nerr := <-nemDone
	select {
	case <-limit.C:
	case <-clients.Done():
	}
	if over := time.Since(start) - r.t.TimeLimit; over > 50*time.Millisecond {
		r.info.ExtendedNS = int64(over)
		r.progress(fmt.Sprintf("the run went %.1fs past its time limit to finish the faults planned inside it", over.Seconds()), true)
	}
	return nerr
}

// worker is one client: its own connections (one per node), its own rng
// from the seed, a new process number after every info.
func (r *runner) worker(ctx context.Context, i int, limiter <-chan time.Time) error {
	rng := rand.New(rand.NewPCG(uint64(r.t.Seed), uint64(i)+1))
	proc := results.Process(i)
	conns := map[string]*workload.Conn{}
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	for {
		if limiter != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-limiter:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		w := r.wls[rng.IntN(len(r.wls))]
		op, write := w.Next(rng)
		node := r.target(rng, write)
		op.Process = proc
		op.Node = node
		if _, err := r.hist.Append(op); err != nil {
			return err
		}
		comp := r.do(ctx, w, conns, node, write || r.t.ReadFrom == ReadPrimary, op)
		// A client completion carries no latency: its invoke, in the same
		// process, has the start (history schema 2).
		comp.Process, comp.Node = proc, node
		comp.Time = r.hist.Now()
		if _, err := r.hist.Append(comp); err != nil {
			return err
		}
		switch comp.Type {
		case results.OK:
			r.ok.Add(1)
		case results.Fail:
			r.fail.Add(1)
		case results.Info:
			r.infoN.Add(1)
			// Jepsen's rule: the process may still be in the middle of
			// that operation; carry on as a new one, on fresh connections.
			proc = results.Process(r.nextProc.Add(1) - 1)
			for n, c := range conns {
				c.Close(context.Background())
				delete(conns, n)
			}
		}
	}
}

// do runs one operation with the per-operation timeout. The operation runs
// to its own timeout even when the time limit passes meanwhile, so that its
// outcome is known whenever possible. toPrimary says the operation is meant
// for the primary (a write, or a read under --read-from primary): a new
// connection for it refuses a node in recovery (workload.PrimaryDSN).
func (r *runner) do(ctx context.Context, w workload.Workload, conns map[string]*workload.Conn, node string, toPrimary bool, op results.Op) results.Op {
	deadline := time.Now().Add(r.t.OpTimeout)
	c := conns[node]
	if c == nil || c.IsClosed() {
		var err error
		dsn := r.c.ConnString(node, false)
		if toPrimary {
			dsn = workload.PrimaryDSN(dsn)
		}
		cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
		c, err = workload.ConnectClient(cctx, dsn)
		cancel()
		if err != nil {
			op.Type = results.Fail // never sent: certainly did not happen
			op.Error = err.Error()
			// A node that is down refuses at once: back off a little so a
			// worker does not spin on it and flood the history.
			time.Sleep(connectBackoff)
			return op
		}
		conns[node] = c
	}
	// The operation's timeout is Within's, not a context's: pgx would
	// watch a context for every statement (see workload.Conn.Within).
	res := c.Within(ctx, time.Until(deadline), func(octx context.Context) results.Op { return w.Do(octx, c, op) })
	if c.IsClosed() {
		delete(conns, node)
	}
	return res
}

// connectBackoff is the pause after a failed connection attempt.
const connectBackoff = 20 * time.Millisecond

// target picks the node of an operation: writes go to the primary as the
// harness knows it; reads where --read-from says.
func (r *runner) target(rng *rand.Rand, write bool) string {
	p := r.topo.Primary()
	if write || r.t.ReadFrom == ReadPrimary {
		return p
	}
	var cands []string
	for _, n := range r.topo.nodes {
		if r.t.ReadFrom == ReadAny || n != p {
			cands = append(cands, n)
		}
	}
	return cands[rng.IntN(len(cands))]
}

// sampleLag records each standby's replication lag every 250 ms.
func (r *runner) sampleLag(ctx context.Context) {
	tk := time.NewTicker(250 * time.Millisecond)
	defer tk.Stop()
	ls := &lagSampler{c: r.c}
	defer ls.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		p := r.topo.Primary()
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		samples, err := ls.sample(sctx, p)
		cancel()
		if err != nil {
			continue
		}
		now := r.hist.Now()
		for _, s := range samples {
			s.TimeNS = now
			_ = r.lag.Append(s)
		}
	}
}

// completed is the number of client operations completed so far.
func (r *runner) completed() int64 { return r.ok.Load() + r.fail.Load() + r.infoN.Load() }

func (r *runner) progressLine() string {
	el := time.Since(r.start)
	total := r.completed()
	rate := float64(total) / el.Seconds()
	nem := "no faults"
	if r.nem != nil && (len(r.t.Faults) > 0 || len(r.t.Sequence) > 0) {
		nem = r.nem.Current()
	}
	return fmt.Sprintf("%5.1fs/%.0fs  %7.0f ops/s  ok %d  fail %d  info %d  primary %s  nemesis: %s",
		el.Seconds(), r.t.TimeLimit.Seconds(), rate, r.ok.Load(), r.fail.Load(), r.infoN.Load(), r.topo.Primary(), nem)
}

// report prints progress: a live line on a terminal, a line every 10 s
// elsewhere.
func (r *runner) report(ctx context.Context) {
	every := 10 * time.Second
	if r.t.Interactive {
		every = 250 * time.Millisecond
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
			r.progress(r.progressLine(), false)
		}
	}
}

// settle heals and restarts everything, waits until every standby has
// replayed the primary's WAL, and records the final reads on every node.
//
// Under an HA manager the harness repairs nothing: when the manager does
// not bring every node back within ManagerSettleWait (cluster.ErrNotSettled),
// the settle step is recorded as failed with the manager's last view and
// the final reads still read what each node has, so the checks judge the
// state the manager left (a failed settle step makes the faults check
// unknown; a lost write stays invalid). Any other failure is the harness's.
func (r *runner) settle(ctx context.Context) error {
	r.progress("settling: heal, restart, catch up", false)
	sctx, cancel := context.WithTimeout(ctx, SettleBound)
	defer cancel()
	inv, err := r.hist.Append(results.Op{Process: results.NemesisProcess, Type: results.Invoke, F: "settle",
		Workload: results.WorkloadNemesis, Fault: &results.Fault{Kind: "settle", Phase: results.PhaseInfo}})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInfra, err)
	}
	var rep cluster.RepairResult
	var rerr error
	if m, ok := r.managed(); ok {
		rep, rerr = r.settleManaged(sctx, m)
	} else {
		rep, rerr = cluster.Repair(sctx, r.c, r.topo.Primary())
	}
	comp := results.Op{Process: results.NemesisProcess, Type: results.OK, F: "settle", Workload: results.WorkloadNemesis,
		Fault: &results.Fault{Kind: "settle", Phase: results.PhaseInfo, Primary: rep.Primary,
			Detail: strings.Join(append(rep.Actions, fmt.Sprintf("sync list %q", rep.Sync)), "; "),
			Nodes:  cluster.NodeStates(sctx, r.c)}}
	if rerr != nil {
		comp.Type, comp.Error = results.Info, rerr.Error()
	}
	comp.Time = r.hist.Now()
	comp.Latency = comp.Time - inv.Time
	if _, err := r.hist.Append(comp); err != nil {
		return fmt.Errorf("%w: %w", ErrInfra, err)
	}
	if rerr != nil && !errors.Is(rerr, cluster.ErrNotSettled) {
		return fmt.Errorf("%w: settle: %w", ErrInfra, rerr)
	}
	if rerr != nil {
		r.progress(rerr.Error()+"; reading what each node has", false)
	}
	if rep.Primary != "" {
		r.topo.SetPrimary(rep.Primary)
	}
	fctx, fcancel := context.WithTimeout(ctx, finalReadsBound)
	defer fcancel()
	return r.finalReads(fctx)
}

// SettleBound bounds the settle step: the repair (or, under a manager, the
// wait for it to bring every node back) and the catch-up of every standby.
var SettleBound = 3 * time.Minute

// ManagerSettleWait bounds, inside SettleBound, the wait for an HA manager
// to report every node healthy and caught up after the heal.
var ManagerSettleWait = 150 * time.Second

// finalReadsBound bounds the final reads that follow the settle step.
const finalReadsBound = time.Minute

// finalReads reads every workload's whole state on every node. A read that
// fails is recorded as a fail with its error (the checker then says what
// it could not judge); only a history that cannot be written stops it.
func (r *runner) finalReads(ctx context.Context) error {
	for _, node := range r.c.Nodes() {
		conn, cerr := workload.Connect(ctx, r.c.ConnString(node, true))
		for _, w := range r.wls {
			inv, err := r.hist.Append(results.Op{Process: results.HarnessProcess, Type: results.Invoke, F: results.FFinal,
				Workload: w.Name(), Node: node})
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInfra, err)
			}
			var ops []results.Op
			ferr := cerr
			if ferr == nil {
				ops, ferr = w.Final(ctx, conn)
			}
			if ferr != nil {
				ops = []results.Op{{Type: results.Fail, F: results.FFinal, Error: ferr.Error()}}
			}
			for _, op := range ops {
				op.Process, op.Node, op.Workload = results.HarnessProcess, node, w.Name()
				op.Time = r.hist.Now()
				op.Latency = op.Time - inv.Time
				if _, err := r.hist.Append(op); err != nil {
					return fmt.Errorf("%w: %w", ErrInfra, err)
				}
			}
		}
		if conn != nil {
			conn.Close(ctx)
		}
	}
	return nil
}

// check reads the history back from disk (the one record of the run),
// judges it, and writes results.json and the report files.
func (r *runner) check(ctx context.Context) error {
	r.progress("checking the history", false)
	// One pass over the history on disk (the one record of the run): the
	// checkers' index and the report's timeline, neither keeping its lines.
	tl := report.NewTimeline()
	res, tail, err := checker.CheckFile(ctx, r.run.History(), checker.Options{Timeout: r.t.CheckTimeout, Settings: r.info.Settings,
		FinalPrimary: r.topo.Primary(), MemoryBudget: r.t.CheckMemory, Model: r.t.Model, Isolation: r.t.isolation()}, tl.Add)
	if err != nil {
		return fmt.Errorf("%w: read back history: %w", ErrInfra, err)
	}
	tl.End(tail)
	r.result = &res
	if err := report.WriteAllTimeline(r.run, r.info, tl, &res); err != nil {
		return fmt.Errorf("%w: write report: %w", ErrInfra, err)
	}
	return nil
}

// runningSettings are the settings recorded as the primary runs them
// rather than as the spec asked: an HA manager chooses its own.
var runningSettings = []string{"synchronous_standby_names", "synchronous_commit"}

// recordRunningSettings reads runningSettings on primary into test.json's
// settings (saveInfo writes them); one that cannot be read keeps the
// spec's value.
func (r *runner) recordRunningSettings(ctx context.Context, primary string) {
	settings := maps.Clone(r.info.Settings)
	if settings == nil {
		settings = map[string]string{}
	}
	for _, name := range runningSettings {
		var v string
		err := cluster.WithAdminConn(ctx, r.c, primary, func(ctx context.Context, conn *pgx.Conn) error {
			return conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
		})
		if err == nil {
			settings[name] = v
		}
	}
	r.info.Settings = settings
}

// saveInfo writes test.json from r.info; it is the one place that does.
// It is called when the run starts (so that a run killed at any moment
// says what it was), once the cluster is set up (the servers' version, the
// manager and the replication settings as the primary runs them) and when
// the clients and the settling are done (end time, the harness's CPU).
func (r *runner) saveInfo() error {
	if err := results.WriteTestInfo(r.run.TestJSON(), r.info); err != nil {
		return fmt.Errorf("%w: test.json: %w", ErrInfra, err)
	}
	return nil
}
