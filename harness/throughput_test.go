package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

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

func pgbench(t *testing.T, c *local.Cluster, conc int, dur time.Duration) float64 {
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
	return tps
}

// TestBenchThroughputVsPgbench compares, on one cluster in one run, the
// register workload's acknowledged writes per second (writes only, history
// recorded, rate 0) with pgbench running the very same statement at the
// same concurrency, alternating to cancel drift. The target: at least 90 %.
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
	be := Backend{Name: "local", Up: func(context.Context, cluster.Spec, string) (cluster.Cluster, error) {
		return keepOpen{c}, nil
	}}
	const conc = 10
	dur := 10 * time.Second
	store := results.Store{Root: filepath.Join(dir, "store")}
	var ours, theirs []float64
	for round := 0; round < 2; round++ {
		out, err := Run(ctx, Test{Name: "throughput", Workloads: []string{"register"}, Options: workload.Options{WritesOnly: true},
			TimeLimit: dur, Concurrency: conc, ReadFrom: ReadPrimary, Seed: int64(round + 1), Store: store}, be)
		require.NoError(t, err)
		require.NoError(t, out.Err)
		h, err := results.ReadFile(out.Run.History())
		require.NoError(t, err)
		ours = append(ours, clientWritesPerSecond(h, dur))
		theirs = append(theirs, pgbench(t, c, conc, dur))
		t.Logf("round %d: strongcheck register writes %.0f/s, pgbench same statement %.0f tps", round+1, ours[round], theirs[round])
	}
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	ratio := mean(ours) / mean(theirs)
	fmt.Printf("throughput: strongcheck %.0f writes/s, pgbench %.0f tps, ratio %.2f (target >= 0.90)\n", mean(ours), mean(theirs), ratio)
	assert.GreaterOrEqual(t, ratio, 0.9, "clients must not be the bottleneck")
}
