// Package config turns `strongcheck test`'s flags into a harness.Test: it
// registers the flags (AddFlags), checks what the harness cannot (a zero
// that on the command line is a mistake, what the chosen backend cannot
// do) and translates the rest (Flags.Test). The command line and the zoo's
// scenarios, which are sets of the same flags, both come through here, so
// that what the zoo runs is exactly what a user can type.
package config

import (
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongcheck/strongcheck/backends"
	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/k8s"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/internal/usererr"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// Flags are `strongcheck test`'s flags, Jepsen-like, as AddFlags registers
// them: the values as typed, before Test checks and translates them.
type Flags struct {
	Name         string
	Workloads    string
	TimeLimit    time.Duration
	Concurrency  int
	Rate         float64
	ReadFrom     string
	Seed         int64
	TestCount    int
	PgConf       []string
	Store        string
	Nodes        string
	Nemesis      string
	Sequence     string
	Model        string
	Interval     time.Duration
	Overrun      time.Duration
	Failover     string
	OpTimeout    time.Duration
	CheckTimeout time.Duration
	Subnet       string
	Keys         int
	Isolation    string
	WritesOnly   bool
	ReadAllKeys  bool
	Backend      string
	LinkRate     string
	CheckMemory  uint64
	ClientCPUs   int
	LeaveRunning bool
	Manager      string
	ManagerConf  []string
	K8s          k8s.Options
	Existing     ExistingFlags
}

// AddFlags registers `strongcheck test`'s flags, with their defaults and
// help, on fl and returns where their values land once fl is parsed.
func AddFlags(fl *pflag.FlagSet) *Flags {
	f := &Flags{}
	d := harness.DefaultTest()
	fl.StringVar(&f.Name, "name", "", "test name in the store (default: the workloads, e.g. register-set)")
	fl.StringVar(&f.Workloads, "workload", strings.Join(d.Workloads, ","), "workloads, comma list: register, set, bank, append (list-append transactions)")
	fl.DurationVar(&f.TimeLimit, "time-limit", d.TimeLimit, "how long the clients run")
	fl.IntVar(&f.Concurrency, "concurrency", d.Concurrency, "client workers, each with its own connections")
	fl.Float64Var(&f.Rate, "rate", 0, "total operations per second (0: as fast as the cluster allows)")
	fl.StringVar(&f.ReadFrom, "read-from", d.ReadFrom, "where reads go: primary, standbys or any")
	fl.Int64Var(&f.Seed, "seed", 0, "seed of every random choice (default: from the clock, recorded in test.json)")
	fl.IntVar(&f.TestCount, "test-count", 1, "run the test this many times (the exit code is the worst)")
	fl.StringArrayVar(&f.PgConf, "pg-conf", nil, "postgresql.conf setting for every node, key=value (repeatable)")
	fl.StringVar(&f.Store, "store", "./store", "store folder for the results")
	fl.StringVar(&f.Nodes, "nodes", strings.Join(cluster.DefaultNodes, ","), "node names, the first is the initial primary")
	fl.StringVar(&f.Nemesis, "nemesis", "kill-primary,partition", "faults, comma list (none for no faults, all for every kind)")
	fl.StringVar(&f.Sequence, "sequence", "", "a fault sequence of your own instead of --nemesis: steps separated by ';' (or @FILE, one step per line); see --help")
	fl.StringVar(&f.Model, "model", string(d.Model), "the model the verdict and exit code follow: "+strings.Join(checker.ModelNames(), ", ")+" (every model is reported)")
	fl.DurationVar(&f.Interval, "nemesis-interval", d.Interval, "one fault per interval")
	fl.DurationVar(&f.Overrun, "overrun", d.Overrun, "how far past --time-limit the clients keep running while the faults planned inside it finish (a slow health check delays them); 0 for none: faults still unstruck then make the run unknown")
	fl.StringVar(&f.Failover, "failover", "", "after a kill of the primary: auto (a standby known to hold every acknowledged commit; when there is none, no promotion, said so), none, promote:NAME, promote:lagging, promote:most-advanced (forced, as an operator would), external (default auto; external, the only choice, with --manager)")
	fl.StringVar(&f.Manager, "manager", cluster.ManagerNone, "HA manager that runs the cluster and decides failovers: none, patroni, pg_auto_failover (local backend)")
	fl.StringArrayVar(&f.ManagerConf, "manager-conf", nil, "the manager's setting, key=value (repeatable; see --help for the keys and strongcheck's defaults)")
	fl.DurationVar(&f.OpTimeout, "op-timeout", d.OpTimeout, "per-operation timeout (a cancel request is sent when it expires)")
	fl.DurationVar(&f.CheckTimeout, "check-timeout", d.CheckTimeout, "time limit of the linearizability search per key (then: unknown)")
	fl.Uint64Var(&f.CheckMemory, "check-memory", d.CheckMemory>>20, "memory budget of the linearizability search in MiB (then: unknown); 0 for none")
	fl.StringVar(&f.Subnet, "subnet", local.AutoSubnet, "local backend: IPv4 subnet of the cluster's bridge, or auto")
	fl.IntVar(&f.Keys, "keys", d.Options.Keys, "register workload: number of keys; append: keys in use at a time")
	fl.StringVar(&f.Isolation, "isolation", string(d.Options.Isolation), "append workload: isolation level, read-committed, repeatable-read or serializable (read-only transactions on a hot standby run at repeatable read where serializable is refused)")
	fl.StringVar(&f.LinkRate, "link-rate", "", "bandwidth of the links between nodes, e.g. 1mbit (a WAN between regions); empty: unlimited")
	fl.IntVar(&f.ClientCPUs, "client-cpus", 0, "OS threads for the clients' Go code while they run (0: a quarter of the CPUs for the local backend, which shares them with PostgreSQL)")
	fl.BoolVar(&f.WritesOnly, "writes-only", false, "workloads do writes only (for throughput measurements)")
	fl.BoolVar(&f.ReadAllKeys, "read-all-keys", false, "append workload: every read-only transaction reads every key in use (finds long forks across nodes more often)")
	fl.BoolVar(&f.LeaveRunning, "leave-db-running", false, "leave the cluster running after the test, for psql (`strongcheck cluster down --dir RUN/cluster` removes it)")
	fl.StringVar(&f.Backend, "backend", "local", "cluster backend: local, k8s (Kubernetes through client-go; kind for laptops), or existing (your own cluster, by --node connection strings)")
	f.K8s.AddFlags(fl)
	f.Existing.addFlags(fl)
	return f
}

// Parse parses args, `strongcheck test`'s flags and nothing else, on a
// flag set of its own and returns the flags and their test. Every error is
// the user's (usererr).
func Parse(args []string) (*Flags, harness.Test, error) {
	fl := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fl.SetOutput(io.Discard)
	f := AddFlags(fl)
	if err := fl.Parse(args); err != nil {
		return nil, harness.Test{}, usererr.Wrap(err)
	}
	if fl.NArg() > 0 {
		return nil, harness.Test{}, usererr.New("test takes 0 argument(s), got %d", fl.NArg())
	}
	t, err := f.Test(fl.Changed("seed"))
	return f, t, err
}

// Existing is the existing backend's name, as --backend spells it.
const Existing = backends.Existing

// Choice is the backend the flags chose for t (as Test returned it), with
// its options.
func (f *Flags) Choice(t harness.Test) backends.Choice {
	c := backends.Choice{Name: f.Backend, Subnet: f.Subnet, K8s: f.K8s}
	if f.Backend == Existing {
		c.Existing = f.ExistingOptions(t, nil)
	}
	return c
}

// Test turns the flags into a harness.Test, checked as harness.Run will
// check it; every error is the user's (usererr). seedSet says --seed was
// given (else the harness picks one). Version and Command are the
// caller's to set.
func (f *Flags) Test(seedSet bool) (harness.Test, error) {
	if err := checkNumbers(f); err != nil {
		return harness.Test{}, err
	}
	t := harness.Test{
		Name: f.Name, TimeLimit: f.TimeLimit, Concurrency: f.Concurrency, Rate: f.Rate, ReadFrom: f.ReadFrom,
		OpTimeout: f.OpTimeout, Interval: f.Interval, CheckTimeout: f.CheckTimeout,
		CheckMemory: f.CheckMemory << 20, ClientCPUs: f.ClientCPUs, Overrun: f.Overrun,
	}
	if f.Overrun == 0 {
		t.Overrun = -1 // none: the Test's zero means the default
	}
	for _, step := range []func(*Flags, *harness.Test) error{parseWorkloads, parseSpec, parseExisting, parseFaults, parseBackend} {
		if err := step(f, &t); err != nil {
			return t, err
		}
	}
	if seedSet {
		t.Seed = f.Seed
		if t.Seed == 0 {
			return t, usererr.New("--seed 0 is reserved for 'choose one'; give another")
		}
	}
	t.Store = results.Store{Root: f.Store}
	// Validated as given: a zero here is a mistake, not "the default".
	if err := t.Validate(); err != nil {
		return t, err
	}
	t.Defaults() // the seed, when --seed was not given
	return t, nil
}

// checkNumbers refuses what only the flags can get wrong: a memory budget
// in MiB that overflows bytes, a count of runs. harness.Test.Validate
// checks the rest.
func checkNumbers(f *Flags) error {
	switch {
	case f.CheckMemory > math.MaxUint64>>20:
		return usererr.New("--check-memory %d: too large (MiB)", f.CheckMemory)
	case f.TestCount < 1:
		return usererr.New("--test-count %d: must be at least 1", f.TestCount)
	case f.Overrun < 0:
		return usererr.New("--overrun %v: must be 0 or more", f.Overrun)
	}
	return nil
}

// parseWorkloads sets the workloads, their options and the test's default
// name.
func parseWorkloads(f *Flags, t *harness.Test) error {
	t.Options.Keys = f.Keys
	t.Options.WritesOnly = f.WritesOnly
	t.Options.ReadAllKeys = f.ReadAllKeys
	t.Options.Isolation = results.Isolation(f.Isolation)
	for _, w := range strings.Split(f.Workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			t.Workloads = append(t.Workloads, w)
		}
	}
	if len(t.Workloads) == 0 {
		return usererr.New("--workload: give at least one of %s", strings.Join(workload.Names(), ", "))
	}
	if t.Name == "" {
		t.Name = strings.Join(t.Workloads, "-")
	}
	return nil
}

// parseSpec sets the cluster's spec: nodes, settings, link rate, manager.
func parseSpec(f *Flags, t *harness.Test) error {
	if f.Nodes != "" {
		for _, n := range strings.Split(f.Nodes, ",") {
			t.Spec.Nodes = append(t.Spec.Nodes, strings.TrimSpace(n))
		}
	}
	t.Spec.Settings = cluster.Settings{}
	t.Spec.LinkRate = f.LinkRate
	for _, kv := range f.PgConf {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return usererr.New("--pg-conf %q: want key=value", kv)
		}
		t.Spec.Settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	conf, err := cluster.ParseManagerConf(f.ManagerConf)
	if err != nil {
		return err
	}
	t.Spec.Manager = cluster.ManagerSpec{Name: f.Manager, Conf: conf}
	if len(conf) == 0 {
		t.Spec.Manager.Conf = nil
	}
	return t.Spec.Validate()
}

// parseFaults sets the nemeses (or the user's sequence in their place),
// the model and the failover policy, whose default is the harness's own
// failover, or the manager's when one runs the cluster.
func parseFaults(f *Flags, t *harness.Test) error {
	failover := f.Failover
	if failover == "" {
		failover = nemesis.FailoverAuto
		if t.Spec.Manager.Managed() {
			failover = nemesis.FailoverExternal
		}
	}
	faults, err := nemesis.Parse(f.Nemesis, t.Spec.NodeNames())
	if err != nil {
		return err
	}
	t.Faults = faults
	if f.Sequence != "" {
		if t.Sequence, err = parseSequenceFlag(f.Sequence, t.Spec.NodeNames()); err != nil {
			return err
		}
		t.Faults = nil // the sequence replaces the nemeses, the default ones included
	}
	if !checker.ValidModel(checker.Model(f.Model)) {
		return usererr.New("--model %q: want one of %s", f.Model, strings.Join(checker.ModelNames(), ", "))
	}
	t.Model = checker.Model(f.Model)
	t.Failover, err = nemesis.ParsePolicy(failover, t.Spec.NodeNames())
	return err
}

// parseBackend refuses what the chosen backend cannot do.
func parseBackend(f *Flags, t *harness.Test) error {
	if f.Backend == Existing {
		return checkExisting(f, t)
	}
	if f.Backend != backends.Local && f.Backend != backends.K8s {
		return usererr.New("--backend %q: want local, k8s or existing", f.Backend)
	}
	if f.Backend == backends.Local {
		if err := backends.CheckSubnet(f.Subnet); err != nil {
			return err
		}
	}
	if f.LeaveRunning {
		if f.Backend != backends.Local {
			return usererr.New("--leave-db-running: only the local backend can leave its cluster running")
		}
		if f.TestCount > 1 {
			return usererr.New("--leave-db-running with --test-count %d: only one run can leave its cluster running", f.TestCount)
		}
		t.KeepCluster = true
	}
	for _, fl := range t.Faults {
		if fl.Kind == nemesis.StallCommit && t.Spec.Manager.Managed() {
			return usererr.New("--nemesis %s: under a manager the harness does not stop single server processes", fl)
		}
	}
	if f.Backend != backends.K8s {
		return nil
	}
	if t.Spec.Manager.Managed() {
		return usererr.New("--manager %s: only the local backend runs HA managers", t.Spec.Manager.Name)
	}
	for _, fl := range t.Faults {
		if fl.Kind == nemesis.LagThenKill {
			return usererr.New("--nemesis %s: the k8s backend cannot shape links between pods", fl)
		}
	}
	if f.LinkRate != "" {
		return usererr.New("--link-rate: the k8s backend cannot shape links between pods")
	}
	return nil
}

// parseSequenceFlag reads --sequence: the steps themselves, or @FILE.
func parseSequenceFlag(v string, nodes []string) (nemesis.Sequence, error) {
	if file, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usererr.New("--sequence %s: %v", v, err)
		}
		v = string(b)
	}
	return nemesis.ParseSequence(v, nodes)
}
