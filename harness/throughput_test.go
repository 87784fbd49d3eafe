package harness

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// keepOpen lends a running cluster to several runs.
type keepOpen struct{ cluster.Cluster }

func (keepOpen) Close(context.Context) error { return nil }

// clientWritesPerSecond counts acknowledged client writes in the steady part
// of a run (after the first second).
func clientWritesPerSecond(h *results.History, limit time.Duration) float64 {
	from := int64(time.Second)
	var n, last int64
	for _, op := range h.Ops {
		if op.Process.IsClient() && op.Type == results.OK && op.F == results.FWrite && op.Time >= from {
			n++
			last = max(last, op.Time)
		}
	}
	if last <= from {
		return 0
	}
	return float64(n) / (float64(last-from) / 1e9)
}

var tpsRe = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// pgbench runs pgbench with the register's write statement and returns its
// transactions per second and its CPU time per transaction.
func pgbench(t *testing.T, c *local.Cluster, conc int, dur time.Duration) (float64, time.Duration) {
	bin, err := local.FindBinaries()
	require.NoError(t, err)
	script := filepath.Join(t.TempDir(), "write.sql")
	require.NoError(t, os.WriteFile(script, []byte(workload.PgbenchWriteScript(10)), 0o644))
	dsn := c.ConnString("n1", false)
	pw := regexp.MustCompile(`password=(\S+)`).FindStringSubmatch(dsn)[1]
	cmd := exec.Command(bin.Path("pgbench"), "-n", "-M", "prepared", "-c", strconv.Itoa(conc), "-j", "2",
		"-T", strconv.Itoa(int(dur.Seconds())), "-f", script, "-h", c.Addr("n1"), "-p", "5432", "-U", local.UserName, local.DBName)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pw)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	m := tpsRe.FindSubmatch(out)
	require.NotNil(t, m, string(out))
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return tps, time.Duration(float64(cpu) / (tps * dur.Seconds()))
}

// Ways rawPgx sends the write: as the harness does (pgx, a context with
// the per-operation timeout), through pgx with a context that never ends
// (pgx then starts no goroutine to watch it), and through pgconn alone
// (a statement prepared once, text parameters, a timer for the timeout).
const (
	rawPgxTimeout = "pgx"
	rawPgxNoCtx   = "pgx-no-ctx"
	rawPgconn     = "pgconn"
	// rawClient is the harness's own client path without the harness:
	// ConnectClient, Within and the register's Do, i.e. the fast path.
	rawClient = "client"
	// rawFast is rawClient without Within's timeout: the register's Do on
	// the fast path and nothing else, the least a Go client here spends.
	rawFast = "fast"
)

// rawPgx runs the register's write statement the way mode says, with conc
// goroutines on the client phase's thread count and random keys of 10 as
// pgbench's script and the workload pick: the floor of what Go and the
// driver cost without the harness (no history, no workload, no nemesis).
// It returns writes per second and CPU per write.
func rawPgx(t *testing.T, c *local.Cluster, conc, cpus int, dur time.Duration, mode string) (float64, time.Duration) {
	ctx := context.Background()
	if mode == rawClient || mode == rawFast {
		return rawClientLoop(t, c, conc, cpus, dur, mode == rawClient)
	}
	conns := make([]*pgx.Conn, conc)
	for i := range conns {
		pc, err := pgx.Connect(ctx, c.ConnString("n1", false))
		require.NoError(t, err)
		defer pc.Close(ctx)
		conns[i] = pc
		if mode == rawPgconn {
			_, err := pc.PgConn().Prepare(ctx, "w", workload.RegisterWriteSQL, nil)
			require.NoError(t, err)
		}
	}
	return measureWrites(t, conc, cpus, dur, func(i int, rng *rand.Rand) bool {
		pc := conns[i]
		k, v := rng.IntN(10), rng.Int64N(1e9)+1
		var err error
		switch mode {
		case rawPgxTimeout:
			octx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = pc.Exec(octx, workload.RegisterWriteSQL, k, v)
			cancel()
		case rawPgxNoCtx:
			_, err = pc.Exec(ctx, workload.RegisterWriteSQL, k, v)
		case rawPgconn:
			timer := time.AfterFunc(5*time.Second, func() { _ = pc.PgConn().CancelRequest(ctx) })
			params := [][]byte{strconv.AppendInt(nil, int64(k), 10), strconv.AppendInt(nil, v, 10)}
			_, err = pc.PgConn().ExecPrepared(ctx, "w", params, nil, nil).Close()
			timer.Stop()
		}
		return err == nil
	})
}

// rawClientLoop is rawPgx's rawClient and rawFast: conc workers writing
// through the harness's client path (ConnectClient, the register's Do,
// within a timeout if bounded) with no history, nemesis or checks.
func rawClientLoop(t *testing.T, c *local.Cluster, conc, cpus int, dur time.Duration, bounded bool) (float64, time.Duration) {
	ctx := context.Background()
	w, err := workload.New("register", workload.Options{WritesOnly: true})
	require.NoError(t, err)
	conns := make([]*workload.Conn, conc)
	for i := range conns {
		cc, err := workload.ConnectClient(ctx, c.ConnString("n1", false))
		require.NoError(t, err)
		defer cc.Close(ctx)
		conns[i] = cc
	}
	return measureWrites(t, conc, cpus, dur, func(i int, rng *rand.Rand) bool {
		cc := conns[i]
		op, _ := w.Next(rng)
		if bounded {
			return cc.Within(ctx, 5*time.Second, func(octx context.Context) results.Op { return w.Do(octx, cc, op) }).Type == results.OK
		}
		return w.Do(ctx, cc, op).Type == results.OK
	})
}

// measureWrites runs write(i, rng) in a loop on conc goroutines (i is the
// goroutine's number, each with an rng of its own) for dur on cpus threads
// and returns the successful writes per second and the process's CPU per
// successful write.
func measureWrites(t *testing.T, conc, cpus int, dur time.Duration, write func(i int, rng *rand.Rand) bool) (float64, time.Duration) {
	prev := runtime.GOMAXPROCS(cpus)
	defer runtime.GOMAXPROCS(prev)
	var n atomic.Int64
	cpu0, t0 := processCPU(), time.Now()
	deadline := t0.Add(dur)
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for time.Now().Before(deadline) {
				if write(i, rng) {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	cpu, wall := processCPU()-cpu0, time.Since(t0)
	require.Positive(t, n.Load(), "no write succeeded")
	return float64(n.Load()) / wall.Seconds(), cpu / time.Duration(n.Load())
}

// The targets of TestBenchThroughputVsPgbench (issue 23): the harness's
// acknowledged writes per second at least 0.9 of pgbench's on the same
// statement, and its CPU per write at most 1.3 times that of its own fast
// path without a timeout (rawFast), measured in the same run. The CPU
// target compares the harness with the least a Go client here spends, not
// with pgbench's C: what is left is the harness's own cost.
const (
	benchThroughputTarget = 0.9
	benchCPUTarget        = 1.3
)

// benchRound is one round of TestBenchThroughputVsPgbench: writes per
// second and CPU per write of each contender.
type benchRound struct {
	ours, pgbench, raw                                         float64
	ourCPU, pgbenchCPU, rawCPU, noCtxCPU, pgconnCPU, clientCPU time.Duration
	fastCPU                                                    time.Duration
}

// benchSummary is the medians of the per-round ratios: each ratio
// compares measurements a few seconds apart on a machine whose speed
// drifts by more than the difference being measured.
type benchSummary struct {
	throughput, throughputMin, throughputMax float64 // ours / pgbench
	cpuVsFast                                float64 // ourCPU / fastCPU
	cpuVsPgbench                             float64 // ourCPU / pgbenchCPU, for the record
	// The driver alone against pgbench's CPU, for the record.
	rawVsPgbench, noCtxVsPgbench, pgconnVsPgbench, clientVsPgbench, fastVsPgbench float64
}

func summarizeBench(rounds []benchRound) benchSummary {
	ratio := func(f func(r benchRound) float64) float64 {
		xs := make([]float64, len(rounds))
		for i, r := range rounds {
			xs[i] = f(r)
		}
		return median(xs)
	}
	cpu := func(num, den func(r benchRound) time.Duration) float64 {
		return ratio(func(r benchRound) float64 { return float64(num(r)) / float64(den(r)) })
	}
	pg := func(r benchRound) time.Duration { return r.pgbenchCPU }
	var s benchSummary
	tp := make([]float64, len(rounds))
	for i, r := range rounds {
		tp[i] = r.ours / r.pgbench
	}
	s.throughput, s.throughputMin, s.throughputMax = median(tp), slices.Min(tp), slices.Max(tp)
	s.cpuVsFast = cpu(func(r benchRound) time.Duration { return r.ourCPU }, func(r benchRound) time.Duration { return r.fastCPU })
	s.cpuVsPgbench = cpu(func(r benchRound) time.Duration { return r.ourCPU }, pg)
	s.rawVsPgbench = cpu(func(r benchRound) time.Duration { return r.rawCPU }, pg)
	s.noCtxVsPgbench = cpu(func(r benchRound) time.Duration { return r.noCtxCPU }, pg)
	s.pgconnVsPgbench = cpu(func(r benchRound) time.Duration { return r.pgconnCPU }, pg)
	s.clientVsPgbench = cpu(func(r benchRound) time.Duration { return r.clientCPU }, pg)
	s.fastVsPgbench = cpu(func(r benchRound) time.Duration { return r.fastCPU }, pg)
	return s
}

// missed says which targets s misses, nil when it meets both.
func (s benchSummary) missed() []string {
	var out []string
	if !(s.throughput >= benchThroughputTarget) {
		out = append(out, fmt.Sprintf("throughput %.2f of pgbench's, target >= %.2f", s.throughput, benchThroughputTarget))
	}
	if !(s.cpuVsFast <= benchCPUTarget) {
		out = append(out, fmt.Sprintf("CPU per write %.2f times the fast path's without a timeout, target <= %.2f", s.cpuVsFast, benchCPUTarget))
	}
	return out
}

// The bench's verdict follows its targets: met, missed one, missed both,
// and never met on numbers that are not numbers.
func TestBenchTargets(t *testing.T) {
	round := func(ours, pgbench float64, ourCPU, fastCPU time.Duration) benchRound {
		return benchRound{ours: ours, pgbench: pgbench, raw: ours, ourCPU: ourCPU, pgbenchCPU: 40 * time.Microsecond,
			rawCPU: fastCPU, noCtxCPU: fastCPU, pgconnCPU: fastCPU, clientCPU: fastCPU, fastCPU: fastCPU}
	}
	us := time.Microsecond
	met := summarizeBench([]benchRound{round(950, 1000, 60*us, 50*us), round(800, 1000, 100*us, 50*us), round(920, 1000, 64*us, 50*us)})
	assert.InDelta(t, 0.92, met.throughput, 1e-9, "the median of the per-round ratios")
	assert.InDelta(t, 0.80, met.throughputMin, 1e-9)
	assert.InDelta(t, 1.28, met.cpuVsFast, 1e-9, "the median of the per-round ratios")
	assert.InDelta(t, 1.6, met.cpuVsPgbench, 1e-9, "recorded, not a target")
	assert.Empty(t, met.missed(), "0.92 of pgbench and 1.28 of the fast path meet both targets")

	slow := summarizeBench([]benchRound{round(890, 1000, 60*us, 50*us)})
	assert.Equal(t, []string{"throughput 0.89 of pgbench's, target >= 0.90"}, slow.missed())
	costly := summarizeBench([]benchRound{round(1000, 1000, 66*us, 50*us)})
	assert.Equal(t, []string{"CPU per write 1.32 times the fast path's without a timeout, target <= 1.30"}, costly.missed())
	assert.Len(t, summarizeBench([]benchRound{round(0, 0, 0, 0)}).missed(), 2, "NaN meets no target")
}

// TestBenchThroughputVsPgbench compares, on one cluster, the register
// workload's acknowledged writes per second (writes only, history recorded,
// rate 0) with pgbench running the very same statement at the same
// concurrency, and the CPU the harness spends per write with the same
// loop on its own fast path without the harness (rawFast). The machine is
// shared and noisy, so the contenders alternate in short rounds and the
// verdict is the median of the per-round ratios (summarizeBench). It puts
// the other driver paths (rawPgx) beside them, which shows how much of
// the difference is the harness and how much Go and the driver. The
// targets: benchThroughputTarget, benchCPUTarget.
func TestBenchThroughputVsPgbench(t *testing.T) {
	if os.Getenv("STRONGCHECK_BENCH") == "" {
		t.Skip("a benchmark: `make bench` runs it (STRONGCHECK_BENCH=1)")
	}
	needLocal(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sc-bench-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	defer os.RemoveAll(dir)
	c, err := local.Up(ctx, local.Options{Dir: filepath.Join(dir, "cluster"), Subnet: local.AutoSubnet})
	require.NoError(t, err)
	defer c.Close(ctx)
	be := Backend{Name: "local", SharesMachine: true, Up: func(context.Context, cluster.Spec, string) (cluster.Cluster, error) {
		return keepOpen{c}, nil
	}}
	const (
		conc   = 10
		rounds = 7
		dur    = 5 * time.Second
	)
	store := results.Store{Root: filepath.Join(dir, "store")}
	run := func(seed int64, limit time.Duration) Outcome {
		out, err := Run(ctx, Test{Name: "throughput", Workloads: []string{"register"}, Options: workload.Options{WritesOnly: true},
			TimeLimit: limit, Concurrency: conc, ReadFrom: ReadPrimary, Seed: seed, Store: store}, be)
		require.NoError(t, err)
		require.NoError(t, out.Err)
		return out
	}
	run(0, 2*time.Second) // creates the table pgbench writes to; warms the caches
	var all []benchRound
	for round := 0; round < rounds; round++ {
		all = append(all, benchOnce(t, c, round, conc, dur, run))
	}
	s := summarizeBench(all)
	med := func(f func(r benchRound) float64) float64 {
		xs := make([]float64, len(all))
		for i, r := range all {
			xs[i] = f(r)
		}
		return median(xs)
	}
	fmt.Printf("throughput: strongcheck %.0f writes/s, pgbench %.0f tps, pgx alone %.0f writes/s (medians of %d alternating %v rounds); "+
		"ratio to pgbench %.2f (median of per-round ratios, range %.2f-%.2f; target >= %.2f)\n",
		med(func(r benchRound) float64 { return r.ours }), med(func(r benchRound) float64 { return r.pgbench }),
		med(func(r benchRound) float64 { return r.raw }), rounds, dur, s.throughput, s.throughputMin, s.throughputMax, benchThroughputTarget)
	fmt.Printf("CPU per write: strongcheck/fast path without a timeout %.2f (median of per-round ratios; target <= %.2f), strongcheck/pgbench %.2f\n",
		s.cpuVsFast, benchCPUTarget, s.cpuVsPgbench)
	fmt.Printf("CPU per write against pgbench's, the driver alone: pgx with a per-operation context %.2f, pgx without one %.2f, pgconn with a timer %.2f, "+
		"the harness's client path (fast path, Within) %.2f, the fast path without a timeout %.2f (medians of per-round ratios)\n",
		s.rawVsPgbench, s.noCtxVsPgbench, s.pgconnVsPgbench, s.clientVsPgbench, s.fastVsPgbench)
	assert.Empty(t, s.missed(), "targets")
}

// benchOnce is one round: pgbench and the harness (alternating who goes
// first, so that neither always runs right after the other's set-up or
// checkpoint), then the driver paths alone.
func benchOnce(t *testing.T, c *local.Cluster, round, conc int, dur time.Duration, run func(int64, time.Duration) Outcome) benchRound {
	var r benchRound
	if round%2 == 0 {
		r.pgbench, r.pgbenchCPU = pgbench(t, c, conc, dur)
	}
	out := run(int64(round+1), dur+time.Second)
	if round%2 == 1 {
		r.pgbench, r.pgbenchCPU = pgbench(t, c, conc, dur)
	}
	threads := max(1, runtime.NumCPU()/4)
	r.raw, r.rawCPU = rawPgx(t, c, conc, threads, dur, rawPgxTimeout)
	_, r.noCtxCPU = rawPgx(t, c, conc, threads, dur, rawPgxNoCtx)
	_, r.pgconnCPU = rawPgx(t, c, conc, threads, dur, rawPgconn)
	_, r.clientCPU = rawPgx(t, c, conc, threads, dur, rawClient)
	_, r.fastCPU = rawPgx(t, c, conc, threads, dur, rawFast)
	h, err := results.ReadFile(out.Run.History())
	require.NoError(t, err)
	info, err := results.ReadTestInfo(out.Run.TestJSON())
	require.NoError(t, err)
	require.NotNil(t, info.Harness)
	r.ours, r.ourCPU = clientWritesPerSecond(h, dur), info.Harness.CPUPerOp()
	t.Logf("round %d: pgbench %.0f tps (%v CPU/tx), strongcheck %.0f writes/s (%v CPU/op, %.2f cores), fast path %v CPU/op, ratio %.2f",
		round+1, r.pgbench, r.pgbenchCPU.Round(time.Microsecond), r.ours, r.ourCPU.Round(time.Microsecond), info.Harness.Cores(),
		r.fastCPU.Round(time.Microsecond), r.ours/r.pgbench)
	return r
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianDur(ds []time.Duration) time.Duration {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	return time.Duration(median(xs))
}
