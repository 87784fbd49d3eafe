// Package harness runs one test: it brings a cluster up through a backend
// it does not know, drives concurrent clients and the nemesis under one seed
// and one clock, records every operation in the history as it happens,
// settles the cluster (heal, restart, catch up, final reads on every node),
// checks the history and writes the store folder: test.json, history.jsonl,
// lag.jsonl, results.json, report.html, summary.md, junit.xml and the node
// logs.
package harness

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/internal/usererr"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// ErrUsage is wrapped by every error in a Test that the user can fix
// (usererr): the CLI exits 254 for it, before anything starts.
var ErrUsage = usererr.Sentinel("bad test")

// Read targets for --read-from.
const (
	ReadPrimary  = "primary"
	ReadStandbys = "standbys"
	ReadAny      = "any"
)

// Backend builds the cluster of a run in dir. The CLI provides it; the
// harness never learns how a backend works.
type Backend struct {
	Name string
	Up   func(ctx context.Context, spec cluster.Spec, dir string) (cluster.Cluster, error)
	// PostgresVersion, when set, reports the servers' version for test.json.
	PostgresVersion func(c cluster.Cluster) string
	// SharesMachine says the cluster runs on the harness's own cores (the
	// local backend): then every core-second the clients spend is taken
	// from PostgreSQL, and Test.ClientCPUs' default is small.
	SharesMachine bool
	// Leave, when set, leaves c running after the run instead of closing
	// it (Test.KeepCluster) and returns, in one line, how to reach it and
	// how to take it down. A backend without it cannot keep a cluster.
	Leave func(c cluster.Cluster) (string, error)
	// ClientRole, when set, is the role the workload clients connect as:
	// the workloads grant their tables to it (default: strongcheck, the
	// role strongcheck's own clusters create).
	ClientRole string
}

// Test is one run's configuration.
type Test struct {
	Name        string
	Workloads   []string
	Options     workload.Options
	TimeLimit   time.Duration
	Concurrency int
	// Rate is the total operations per second over all workers; 0 is as
	// fast as the cluster allows.
	Rate     float64
	ReadFrom string
	Seed     int64
	// OpTimeout bounds one operation; when it expires during a commit the
	// client sends a cancel request (as a JDBC query timeout does) and the
	// operation is info.
	OpTimeout time.Duration
	Faults    []nemesis.Fault
	// Sequence, when not empty, replaces the seeded plan of Faults with
	// the user's own steps, run once from the first interval on.
	Sequence nemesis.Sequence
	Interval time.Duration
	// Overrun is how far past TimeLimit the clients keep running while the
	// nemesis finishes the faults its plan placed inside the time limit
	// (a slow health check or failover delays the steps after it). 0
	// picks DefaultOverrun; a negative value allows none. Steps still
	// unstruck when it runs out are recorded as faults that did not
	// happen, and the run is unknown. test.json records the allowance and
	// by how much the run really went past its time limit.
	Overrun  time.Duration
	Failover nemesis.Policy
	// Model is the consistency model the verdict follows (checker.Models;
	// empty: guide). Every model is judged and reported either way.
	Model checker.Model
	// CheckTimeout bounds the linearizability search per key.
	CheckTimeout time.Duration
	// CheckMemory bounds the linearizability search's heap (bytes, 0: no
	// bound): past it the check is unknown (checker.Options.MemoryBudget).
	CheckMemory uint64
	Spec        cluster.Spec
	Store       results.Store
	// Command is the exact command line, recorded in test.json.
	Command []string
	Version string
	// Progress receives progress lines; Interactive redraws one line.
	Progress    func(line string, final bool)
	Interactive bool
	// KeepCluster leaves the cluster running after the run, data and all
	// (`--leave-db-running`, as Jepsen calls it), for a look with psql;
	// the backend's Leave says how to take it down. The node logs in the
	// run folder are copied at the end of the run as usual.
	KeepCluster bool
	// ClientCPUs is how many OS threads may run the harness's Go code at
	// once (GOMAXPROCS) while the clients run; it is restored afterwards,
	// for the check. 0 picks it: a quarter of the machine's CPUs (at least
	// one) when the backend shares the machine, otherwise Go's default.
	// Clients that wait on the network most of the time spend less CPU on
	// fewer threads, because the Go scheduler wakes and hands work between
	// threads less often: on two cores with a local cluster, one thread
	// costs about 15 % less CPU per operation than two (see
	// TestBenchThroughputVsPgbench). GOMAXPROCS is per process: runs that
	// overlap in one process must not set different values.
	ClientCPUs int
}

// clientCPUs is the GOMAXPROCS for the client phase under t and be, or 0
// to leave it as it is.
func (t *Test) clientCPUs(be Backend) int {
	switch {
	case t.ClientCPUs > 0:
		return t.ClientCPUs
	case !be.SharesMachine || os.Getenv("GOMAXPROCS") != "":
		return 0
	}
	return max(1, runtime.NumCPU()/4)
}

// DefaultOverrun is Test.Overrun's default: room for one delayed step's
// health check (the nemesis waits up to a minute for a healthy cluster)
// beyond the time limit.
const DefaultOverrun = 60 * time.Second

// DefaultTest is the default test of DESIGN.md, the one place its values
// are defined: Defaults fills a Test's zero fields from it and the command
// line's flags take it as their defaults. Its Seed is 0: a run without one
// takes it from the clock (Defaults).
func DefaultTest() Test {
	return Test{
		Name:         "default",
		Workloads:    []string{results.WorkloadRegister, results.WorkloadSet},
		Options:      workload.Options{Keys: workload.DefaultKeys, Isolation: workload.DefaultIsolation},
		TimeLimit:    60 * time.Second,
		Concurrency:  10,
		ReadFrom:     ReadAny,
		OpTimeout:    5 * time.Second,
		Interval:     10 * time.Second,
		Overrun:      DefaultOverrun,
		Failover:     nemesis.Policy{Mode: nemesis.FailoverAuto},
		Model:        checker.ModelGuide,
		CheckTimeout: 60 * time.Second,
		CheckMemory:  4096 << 20,
	}
}

// Defaults fills the zero fields that mean "the default" with
// DefaultTest's values, and a zero Seed from the clock. CheckMemory 0
// stays 0 (no bound), Rate 0 (as fast as the cluster allows), Faults
// empty (no faults).
func (t *Test) Defaults() {
	d := DefaultTest()
	setIfZero(&t.Name, d.Name)
	if len(t.Workloads) == 0 {
		t.Workloads = d.Workloads
	}
	setIfZero(&t.Options.Keys, d.Options.Keys)
	setIfZero(&t.Options.Isolation, d.Options.Isolation)
	setIfZero(&t.TimeLimit, d.TimeLimit)
	setIfZero(&t.Concurrency, d.Concurrency)
	setIfZero(&t.ReadFrom, d.ReadFrom)
	setIfZero(&t.OpTimeout, d.OpTimeout)
	setIfZero(&t.Interval, d.Interval)
	setIfZero(&t.Overrun, d.Overrun)
	setIfZero(&t.Failover.Mode, d.Failover.Mode)
	setIfZero(&t.CheckTimeout, d.CheckTimeout)
	setIfZero(&t.Model, d.Model)
	setIfZero(&t.Seed, time.Now().UnixNano())
}

func setIfZero[T comparable](field *T, v T) {
	var zero T
	if *field == zero {
		*field = v
	}
}

// Validate checks everything the user gave before anything starts, on
// the test as it will run: a zero that Defaults would fill is refused, so
// call Defaults first where zero means "the default". Its messages name
// the command line's flags.
func (t *Test) Validate() error {
	var errs []string
	if err := results.ValidTestName(t.Name); err != nil {
		errs = append(errs, err.Error())
	}
	known := workload.Names()
	seen := map[string]bool{}
	for _, w := range t.Workloads {
		if !slices.Contains(known, w) {
			errs = append(errs, fmt.Sprintf("unknown workload %q (known: %s)", w, strings.Join(known, ", ")))
		}
		if seen[w] {
			errs = append(errs, fmt.Sprintf("workload %q given twice", w))
		}
		seen[w] = true
	}
	errs = append(errs, t.validateNumbers()...)
	if !slices.Contains([]string{ReadPrimary, ReadStandbys, ReadAny}, t.ReadFrom) {
		errs = append(errs, fmt.Sprintf("--read-from %q: want primary, standbys or any", t.ReadFrom))
	}
	if len(t.Faults) > 0 && len(t.Sequence) > 0 {
		errs = append(errs, "give either nemeses or a fault sequence, not both")
	}
	if lv := t.Options.Isolation; !slices.Contains(results.IsolationLevels(), lv) {
		errs = append(errs, fmt.Sprintf("--isolation %q: want %s", lv, strings.Join(results.IsolationNames(), ", ")))
	}
	if t.Options.ReadAllKeys && !slices.Contains(t.Workloads, results.WorkloadAppend) {
		errs = append(errs, fmt.Sprintf("--read-all-keys is for the %s workload, which this test does not run", results.WorkloadAppend))
	}
	if t.Options.ReadAllKeys && t.Options.WritesOnly {
		errs = append(errs, "--read-all-keys with --writes-only: no transaction reads, so none would read every key")
	}
	if t.Model != "" && !checker.ValidModel(t.Model) {
		errs = append(errs, fmt.Sprintf("model %q: want one of %s", t.Model, strings.Join(checker.ModelNames(), ", ")))
	}
	if err := t.Spec.Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	errs = append(errs, t.validateManaged()...)
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrUsage, strings.Join(errs, "; "))
	}
	return nil
}

// validateNumbers refuses the numbers that make no sense.
func (t *Test) validateNumbers() []string {
	var errs []string
	positive := []struct {
		flag string
		d    time.Duration
	}{{"--time-limit", t.TimeLimit}, {"--op-timeout", t.OpTimeout}, {"--nemesis-interval", t.Interval}, {"--check-timeout", t.CheckTimeout}}
	for _, p := range positive {
		if p.d <= 0 {
			errs = append(errs, fmt.Sprintf("%s %v: must be positive", p.flag, p.d))
		}
	}
	if t.Concurrency < 1 {
		errs = append(errs, fmt.Sprintf("--concurrency %d: must be at least 1", t.Concurrency))
	}
	if t.Options.Keys < 1 {
		errs = append(errs, fmt.Sprintf("--keys %d: must be at least 1", t.Options.Keys))
	}
	if t.ClientCPUs < 0 {
		errs = append(errs, fmt.Sprintf("--client-cpus %d: must be >= 0 (0: automatic)", t.ClientCPUs))
	}
	switch {
	case !(t.Rate >= 0) || math.IsInf(t.Rate, 1):
		errs = append(errs, fmt.Sprintf("--rate %v: must be a number >= 0", t.Rate))
	case t.Rate > 0 && time.Duration(float64(time.Second)/t.Rate) <= 0:
		errs = append(errs, fmt.Sprintf("--rate %v: at most 1e9 operations per second", t.Rate))
	}
	return errs
}
