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
	Failover nemesis.Policy
	// Model is the consistency model the verdict follows (checker.Models;
	// empty: guide). Every model is judged and reported either way.
	Model string
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

// Defaults fills zero fields with the default test of DESIGN.md.
func (t *Test) Defaults() {
	if t.Name == "" {
		t.Name = "default"
	}
	if len(t.Workloads) == 0 {
		t.Workloads = []string{"register", "set"}
	}
	if t.TimeLimit == 0 {
		t.TimeLimit = 60 * time.Second
	}
	if t.Concurrency == 0 {
		t.Concurrency = 10
	}
	if t.ReadFrom == "" {
		t.ReadFrom = ReadAny
	}
	if t.OpTimeout == 0 {
		t.OpTimeout = 5 * time.Second
	}
	if t.Interval == 0 {
		t.Interval = 10 * time.Second
	}
	if t.Failover.Mode == "" {
		t.Failover = nemesis.Policy{Mode: nemesis.FailoverAuto}
	}
	if t.CheckTimeout == 0 {
		t.CheckTimeout = 60 * time.Second
	}
	if t.Seed == 0 {
		t.Seed = time.Now().UnixNano()
	}
	if t.Model == "" {
		t.Model = checker.ModelGuide
	}
}

// Validate checks everything the user gave before anything starts.
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
	if t.TimeLimit <= 0 {
		errs = append(errs, fmt.Sprintf("time limit %v must be positive", t.TimeLimit))
	}
	if t.Concurrency < 1 {
		errs = append(errs, fmt.Sprintf("concurrency %d must be at least 1", t.Concurrency))
	}
	if t.ClientCPUs < 0 {
		errs = append(errs, fmt.Sprintf("client CPUs %d must be >= 0 (0: automatic)", t.ClientCPUs))
	}
	if !(t.Rate >= 0) || math.IsInf(t.Rate, 1) || t.Rate > 0 && time.Duration(float64(time.Second)/t.Rate) <= 0 {
		errs = append(errs, fmt.Sprintf("rate %v must be a number from 0 to 1e9", t.Rate))
	}
	if t.OpTimeout <= 0 {
		errs = append(errs, "operation timeout must be positive")
	}
	if !slices.Contains([]string{ReadPrimary, ReadStandbys, ReadAny}, t.ReadFrom) {
		errs = append(errs, fmt.Sprintf("--read-from %q: want primary, standbys or any", t.ReadFrom))
	}
	if (len(t.Faults) > 0 || len(t.Sequence) > 0) && t.Interval <= 0 {
		errs = append(errs, "nemesis interval must be positive")
	}
	if len(t.Faults) > 0 && len(t.Sequence) > 0 {
		errs = append(errs, "give either nemeses or a fault sequence, not both")
	}
	if t.Options.ReadAllKeys && !slices.Contains(t.Workloads, results.WorkloadAppend) {
		errs = append(errs, fmt.Sprintf("--read-all-keys is for the %s workload, which this test does not run", results.WorkloadAppend))
	}
	if t.Model != "" && !checker.ValidModel(t.Model) {
		errs = append(errs, fmt.Sprintf("model %q: want one of %s", t.Model, strings.Join(checker.Models, ", ")))
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
