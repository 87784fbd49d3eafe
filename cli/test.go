package cli

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/k8s"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/report"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// testFlags are `strongcheck test`'s flags, Jepsen-like.
type testFlags struct {
	name         string
	workloads    string
	timeLimit    time.Duration
	concurrency  int
	rate         float64
	readFrom     string
	seed         int64
	testCount    int
	pgConf       []string
	store        string
	nodes        string
	nemesis      string
	sequence     string
	model        string
	interval     time.Duration
	failover     string
	opTimeout    time.Duration
	checkTimeout time.Duration
	subnet       string
	keys         int
	isolation    string
	writesOnly   bool
	readAllKeys  bool
	backend      string
	scenario     string // expanded before parsing: see expandScenario
	linkRate     string
	checkMemory  uint64
	clientCPUs   int
	leaveRunning bool
	manager      string
	managerConf  []string
	k8s          k8s.Options
}

func newTestCmd(stdout, stderr io.Writer) *cobra.Command {
	var f *testFlags
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Run a test: cluster up, clients and faults, settle, check, report",
		Long: `Run a test. With no flags it checks the seed guide's promise in full: workloads register
and set, reads on every node, kill-primary and partition faults one at a time, auto failover, 60 s.

Faults (--nemesis, comma list, or all):
` + faultHelp() + `
Failover after a kill of the primary (--failover): auto (promote the standby that the sync list
guarantees to hold every acknowledged commit, or none when no such standby can be known), none
(no promotion: measure the outage), promote:NAME, promote:lagging or promote:most-advanced
(promote that node whatever it holds: an operator's choice), external (something else promotes).

A fault sequence of your own (--sequence 'partition n3; wait 2s; kill primary; promote n3; heal')
replaces the seeded nemeses; it runs once, from the first interval on, every step verified:
` + sequenceHelp() + `
Models (--model): the verdict and exit code follow one; the report shows them all.
` + modelHelp() + `
HA managers (--manager): the manager provisions and runs the cluster and decides every
failover; strongcheck injects the faults, follows the primary the manager names and judges.
` + managerHelp(),
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTest(cmd.Context(), f, cmd.Flags().Changed("seed"), stdout, stderr)
		},
	}
	f = addTestFlags(cmd.Flags())
	return cmd
}

// addTestFlags registers `strongcheck test`'s flags on fl and returns where
// their values land once fl is parsed.
func addTestFlags(fl *pflag.FlagSet) *testFlags {
	f := &testFlags{}
	fl.StringVar(&f.name, "name", "", "test name in the store (default: the workloads, e.g. register-set)")
	fl.StringVar(&f.workloads, "workload", "register,set", "workloads, comma list: register, set, bank, append (list-append transactions)")
	fl.DurationVar(&f.timeLimit, "time-limit", 60*time.Second, "how long the clients run")
	fl.IntVar(&f.concurrency, "concurrency", 10, "client workers, each with its own connections")
	fl.Float64Var(&f.rate, "rate", 0, "total operations per second (0: as fast as the cluster allows)")
	fl.StringVar(&f.readFrom, "read-from", harness.ReadAny, "where reads go: primary, standbys or any")
	fl.Int64Var(&f.seed, "seed", 0, "seed of every random choice (default: from the clock, recorded in test.json)")
	fl.IntVar(&f.testCount, "test-count", 1, "run the test this many times (the exit code is the worst)")
	fl.StringArrayVar(&f.pgConf, "pg-conf", nil, "postgresql.conf setting for every node, key=value (repeatable)")
	fl.StringVar(&f.store, "store", "./store", "store folder for the results")
	fl.StringVar(&f.nodes, "nodes", strings.Join(cluster.DefaultNodes, ","), "node names, the first is the initial primary")
	fl.StringVar(&f.nemesis, "nemesis", "kill-primary,partition", "faults, comma list (none for no faults, all for every kind)")
	fl.StringVar(&f.sequence, "sequence", "", "a fault sequence of your own instead of --nemesis: steps separated by ';' (or @FILE, one step per line); see --help")
	fl.StringVar(&f.model, "model", checker.ModelGuide, "the model the verdict and exit code follow: "+strings.Join(checker.Models, ", ")+" (every model is reported)")
	fl.DurationVar(&f.interval, "nemesis-interval", 10*time.Second, "one fault per interval")
	fl.StringVar(&f.failover, "failover", "", "after a kill of the primary: auto (a standby known to hold every acknowledged commit; when there is none, no promotion, said so), none, promote:NAME, promote:lagging, promote:most-advanced (forced, as an operator would), external (default auto; external, the only choice, with --manager)")
	fl.StringVar(&f.manager, "manager", cluster.ManagerNone, "HA manager that runs the cluster and decides failovers: none, patroni, pg_auto_failover (local backend)")
	fl.StringArrayVar(&f.managerConf, "manager-conf", nil, "the manager's setting, key=value (repeatable; see --help for the keys and strongcheck's defaults)")
	fl.DurationVar(&f.opTimeout, "op-timeout", 5*time.Second, "per-operation timeout (a cancel request is sent when it expires)")
	fl.DurationVar(&f.checkTimeout, "check-timeout", 60*time.Second, "time limit of the linearizability search per key (then: unknown)")
	fl.Uint64Var(&f.checkMemory, "check-memory", 4096, "memory budget of the linearizability search in MiB (then: unknown); 0 for none")
	fl.StringVar(&f.subnet, "subnet", local.AutoSubnet, "local backend: IPv4 subnet of the cluster's bridge, or auto")
	fl.IntVar(&f.keys, "keys", 10, "register workload: number of keys; append: keys in use at a time")
	fl.StringVar(&f.isolation, "isolation", "serializable", "append workload: isolation level, read-committed, repeatable-read or serializable (read-only transactions on a hot standby run at repeatable read where serializable is refused)")
	fl.StringVar(&f.linkRate, "link-rate", "", "bandwidth of the links between nodes, e.g. 1mbit (a WAN between regions); empty: unlimited")
	fl.IntVar(&f.clientCPUs, "client-cpus", 0, "OS threads for the clients' Go code while they run (0: a quarter of the CPUs for the local backend, which shares them with PostgreSQL)")
	fl.BoolVar(&f.writesOnly, "writes-only", false, "workloads do writes only (for throughput measurements)")
	fl.BoolVar(&f.readAllKeys, "read-all-keys", false, "append workload: every read-only transaction reads every key in use (finds long forks across nodes more often)")
	fl.BoolVar(&f.leaveRunning, "leave-db-running", false, "leave the cluster running after the test, for psql (`strongcheck cluster down --dir RUN/cluster` removes it)")
	fl.StringVar(&f.backend, "backend", "local", "cluster backend: local, or k8s (Kubernetes through client-go; kind for laptops)")
	f.k8s.AddFlags(fl)
	fl.StringVar(&f.scenario, "scenario", "", "run a scenario of the zoo (see `strongcheck scenarios`); later flags override its own")
	return f
}

func sequenceHelp() string {
	var b strings.Builder
	for _, v := range nemesis.SequenceVerbs {
		fmt.Fprintf(&b, "  %-28s %s\n", v.Verb, v.Help)
	}
	return b.String()
}

func modelHelp() string {
	var b strings.Builder
	for _, m := range checker.Models {
		fmt.Fprintf(&b, "  %-13s %s\n", m, checker.ModelHelp[m])
	}
	return b.String()
}

func managerHelp() string {
	var b strings.Builder
	for _, m := range cluster.Managers {
		fmt.Fprintf(&b, "  %-20s %s\n", m.Name, m.Help)
		for _, k := range cluster.ManagerKeys[m.Name] {
			fmt.Fprintf(&b, "      %-34s %-8s %s\n", k.Name, k.Default, k.Help)
		}
	}
	b.WriteString("  candidate-priority and replication-quorum may name one node: --manager-conf candidate-priority.n3=0\n")
	return b.String()
}

func faultHelp() string {
	var b strings.Builder
	for _, k := range nemesis.Kinds {
		fmt.Fprintf(&b, "  %-20s %s\n", k.Name, k.Help)
	}
	return b.String()
}

// parseTest turns flags into a harness.Test; every error is the user's.
func parseTest(f *testFlags, seedSet bool) (harness.Test, error) {
	if err := checkNumbers(f); err != nil {
		return harness.Test{}, err
	}
	t := harness.Test{
		Name: f.name, TimeLimit: f.timeLimit, Concurrency: f.concurrency, Rate: f.rate, ReadFrom: f.readFrom,
		OpTimeout: f.opTimeout, Interval: f.interval, CheckTimeout: f.checkTimeout, Version: Version,
		CheckMemory: f.checkMemory << 20, ClientCPUs: f.clientCPUs,
	}
	for _, step := range []func(*testFlags, *harness.Test) error{parseWorkloads, parseSpec, parseFaults, parseBackend} {
		if err := step(f, &t); err != nil {
			return t, err
		}
	}
	if seedSet {
		t.Seed = f.seed
		if t.Seed == 0 {
			return t, usageErr("--seed 0 is reserved for 'choose one'; give another")
		}
	}
	t.Store = results.Store{Root: f.store}
	t.Command = os.Args
	t.Defaults()
	return t, t.Validate()
}

// checkNumbers refuses the numeric flags that make no sense. Zero means
// "default" inside harness.Test; on the command line it is a mistake,
// caught here before Defaults could hide it.
func checkNumbers(f *testFlags) error {
	switch {
	case f.concurrency < 1:
		return usageErr("--concurrency %d: must be at least 1", f.concurrency)
	case f.timeLimit <= 0:
		return usageErr("--time-limit %v: must be positive", f.timeLimit)
	case f.opTimeout <= 0:
		return usageErr("--op-timeout %v: must be positive", f.opTimeout)
	case f.interval <= 0:
		return usageErr("--nemesis-interval %v: must be positive", f.interval)
	case f.checkTimeout <= 0:
		return usageErr("--check-timeout %v: must be positive", f.checkTimeout)
	case !(f.rate >= 0) || math.IsInf(f.rate, 1):
		return usageErr("--rate %v: must be a number >= 0", f.rate)
	case f.rate > 0 && time.Duration(float64(time.Second)/f.rate) <= 0:
		return usageErr("--rate %v: at most 1e9 operations per second", f.rate)
	case f.checkMemory > math.MaxUint64>>20:
		return usageErr("--check-memory %d: too large (MiB)", f.checkMemory)
	case f.keys < 1:
		return usageErr("--keys %d: must be at least 1", f.keys)
	case f.clientCPUs < 0:
		return usageErr("--client-cpus %d: must be >= 0 (0: automatic)", f.clientCPUs)
	case f.testCount < 1:
		return usageErr("--test-count %d: must be at least 1", f.testCount)
	}
	return nil
}

// parseWorkloads sets the workloads, their options and the test's default
// name.
func parseWorkloads(f *testFlags, t *harness.Test) error {
	t.Options.Keys = f.keys
	t.Options.WritesOnly = f.writesOnly
	t.Options.ReadAllKeys = f.readAllKeys
	if !slices.Contains(workload.IsolationLevels(), f.isolation) {
		return usageErr("--isolation %q: want %s", f.isolation, strings.Join(workload.IsolationLevels(), ", "))
	}
	t.Options.Isolation = f.isolation
	for _, w := range strings.Split(f.workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			t.Workloads = append(t.Workloads, w)
		}
	}
	if len(t.Workloads) == 0 {
		return usageErr("--workload: give at least one of %s", strings.Join(workload.Names(), ", "))
	}
	if t.Name == "" {
		t.Name = strings.Join(t.Workloads, "-")
	}
	return nil
}

// parseSpec sets the cluster's spec: nodes, settings, link rate, manager.
func parseSpec(f *testFlags, t *harness.Test) error {
	if f.nodes != "" {
		for _, n := range strings.Split(f.nodes, ",") {
			t.Spec.Nodes = append(t.Spec.Nodes, strings.TrimSpace(n))
		}
	}
	t.Spec.Settings = cluster.Settings{}
	t.Spec.LinkRate = f.linkRate
	for _, kv := range f.pgConf {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return usageErr("--pg-conf %q: want key=value", kv)
		}
		t.Spec.Settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	conf, err := cluster.ParseManagerConf(f.managerConf)
	if err != nil {
		return err
	}
	t.Spec.Manager = cluster.ManagerSpec{Name: f.manager, Conf: conf}
	if len(conf) == 0 {
		t.Spec.Manager.Conf = nil
	}
	return t.Spec.Validate()
}

// parseFaults sets the nemeses (or the user's sequence in their place),
// the model and the failover policy, whose default is the harness's own
// failover, or the manager's when one runs the cluster.
func parseFaults(f *testFlags, t *harness.Test) error {
	failover := f.failover
	if failover == "" {
		failover = nemesis.FailoverAuto
		if t.Spec.Manager.Managed() {
			failover = nemesis.FailoverExternal
		}
	}
	faults, err := nemesis.Parse(f.nemesis, t.Spec.NodeNames())
	if err != nil {
		return err
	}
	t.Faults = faults
	if f.sequence != "" {
		if t.Sequence, err = parseSequenceFlag(f.sequence, t.Spec.NodeNames()); err != nil {
			return err
		}
		t.Faults = nil // the sequence replaces the nemeses, the default ones included
	}
	if !checker.ValidModel(f.model) {
		return usageErr("--model %q: want one of %s", f.model, strings.Join(checker.Models, ", "))
	}
	t.Model = f.model
	t.Failover, err = nemesis.ParsePolicy(failover, t.Spec.NodeNames())
	return err
}

// parseBackend refuses what the chosen backend cannot do.
func parseBackend(f *testFlags, t *harness.Test) error {
	if f.backend != "local" && f.backend != "k8s" {
		return usageErr("--backend %q: want local or k8s", f.backend)
	}
	if f.backend == "local" {
		if err := checkSubnet(f.subnet); err != nil {
			return err
		}
	}
	if f.leaveRunning {
		if f.backend != "local" {
			return usageErr("--leave-db-running: only the local backend can leave its cluster running")
		}
		if f.testCount > 1 {
			return usageErr("--leave-db-running with --test-count %d: only one run can leave its cluster running", f.testCount)
		}
		t.KeepCluster = true
	}
	for _, fl := range t.Faults {
		if fl.Kind == nemesis.StallCommit && t.Spec.Manager.Managed() {
			return usageErr("--nemesis %s: under a manager the harness does not stop single server processes", fl)
		}
	}
	if f.backend != "k8s" {
		return nil
	}
	if t.Spec.Manager.Managed() {
		return usageErr("--manager %s: only the local backend runs HA managers", t.Spec.Manager.Name)
	}
	for _, fl := range t.Faults {
		if fl.Kind == nemesis.LagThenKill {
			return usageErr("--nemesis %s: the k8s backend cannot shape links between pods", fl)
		}
	}
	if f.linkRate != "" {
		return usageErr("--link-rate: the k8s backend cannot shape links between pods")
	}
	return nil
}

// checkSubnet refuses a --subnet the local backend could not use, before
// anything starts.
func checkSubnet(subnet string) error {
	if subnet == local.AutoSubnet {
		return nil
	}
	if _, err := local.ParseSubnet(subnet); err != nil {
		return usageErr("--subnet: %w (or auto)", err)
	}
	return nil
}

// localBackend builds clusters with cluster/local.
func localBackend(subnet string, logf func(string, ...any)) harness.Backend {
	return harness.Backend{
		Name:          "local",
		SharesMachine: true,
		Up: func(ctx context.Context, spec cluster.Spec, dir string) (cluster.Cluster, error) {
			if err := local.Preflight(); err != nil {
				return nil, err
			}
			opts := local.Options{Dir: dir, Subnet: subnet, Spec: spec, Logf: logf}
			if spec.Manager.Managed() {
				return local.UpManaged(ctx, opts)
			}
			return local.Up(ctx, opts)
		},
		Leave: leaveLocal,
		PostgresVersion: func(c cluster.Cluster) string {
			switch lc := c.(type) {
			case *local.Cluster:
				return lc.PostgresVersion()
			case *local.ManagedCluster:
				return lc.PostgresVersion()
			}
			return ""
		},
	}
}

// leaveLocal leaves a local cluster running after its run.
func leaveLocal(c cluster.Cluster) (string, error) {
	lc, ok := c.(*local.Cluster)
	if !ok {
		return "", fmt.Errorf("not a local cluster: %T", c)
	}
	if err := lc.Detach(); err != nil {
		return "", err
	}
	return fmt.Sprintf("strongcheck cluster status --dir %s (--show-passwords for psql); strongcheck cluster down --dir %s removes it", lc.Dir(), lc.Dir()), nil
}

// k8sBackend builds clusters on Kubernetes with cluster/k8s.
func k8sBackend(opts k8s.Options) harness.Backend {
	return harness.Backend{
		Name: "k8s",
		Up: func(ctx context.Context, spec cluster.Spec, _ string) (cluster.Cluster, error) {
			o := opts
			o.Spec = spec
			return k8s.Up(ctx, o)
		},
	}
}

// preflightLocal checks the machine before a run starts, so that a missing
// binary is an error with an install hint rather than a failed run.
func preflightLocal() error {
	if err := local.Preflight(); err != nil {
		return err
	}
	_, err := local.FindBinaries()
	return err
}

func runTest(ctx context.Context, f *testFlags, seedSet bool, stdout, stderr io.Writer) error {
	t, err := parseTest(f, seedSet)
	if err != nil {
		return err
	}
	switch f.backend {
	case "local":
		if err := preflightLocal(); err != nil {
			return err
		}
	case "k8s":
		// No run folder for a cluster that cannot be reached.
		if _, _, err := k8s.Connect(ctx, f.k8s); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(f.store, 0o755); err != nil {
		return usageErr("--store %s: %w", f.store, err)
	}
	interactive := false
	if fd, ok := stderr.(*os.File); ok && term.IsTerminal(int(fd.Fd())) {
		interactive = true
	}
	t.Interactive = interactive
	t.Progress = func(line string, final bool) {
		switch {
		case interactive && !final:
			fmt.Fprintf(stderr, "\r\033[K%s", line)
		case interactive:
			fmt.Fprintf(stderr, "\r\033[K%s\n", line)
		default:
			fmt.Fprintf(stderr, "%s %s\n", time.Now().UTC().Format("15:04:05"), line)
		}
	}
	worst := checker.Valid
	var lastErr error
	for i := 0; i < f.testCount; i++ {
		if i > 0 && !seedSet {
			t.Seed = time.Now().UnixNano()
		} else if i > 0 {
			t.Seed++
		}
		be := localBackend(f.subnet, nil)
		if f.backend == "k8s" {
			be = k8sBackend(f.k8s)
		}
		out, err := harness.Run(ctx, t, be)
		if err != nil {
			return err
		}
		if interactive {
			fmt.Fprintln(stderr)
		}
		printOutcome(stdout, out, t.Seed)
		if out.Err != nil {
			lastErr = out.Err
			continue
		}
		if out.Result != nil {
			worst = checker.Combine(worst, out.Result.Verdict)
		}
		if p := os.Getenv("GITHUB_STEP_SUMMARY"); p != "" {
			if err := report.AppendGitHubSummary(out.Run.SummaryMD()); err != nil {
				fmt.Fprintf(stderr, "strongcheck: GITHUB_STEP_SUMMARY: %v\n", err)
			}
		}
	}
	if lastErr != nil {
		// exitCode decides: 254 when the cause was the user's (a backend
		// refusing an argument), else 255.
		return lastErr
	}
	if code := worst.ExitCode(); code != 0 {
		return &exitError{code, fmt.Errorf("%w: verdict %s", errQuiet, worst)}
	}
	return nil
}

func printOutcome(w io.Writer, out harness.Outcome, seed int64) {
	if r := out.Result; r != nil {
		fmt.Fprintf(w, "verdict: %s under the %s model (seed %d)\n", strings.ToUpper(string(r.Verdict)), r.Model, seed)
		for _, m := range r.Models {
			fmt.Fprintf(w, "  model %-13s %-8s %s\n", m.Model, m.Verdict, m.Summary)
		}
		for _, a := range r.Anomalies {
			doc := "not documented: a finding"
			if a.Documented {
				doc = "documented"
			}
			fmt.Fprintf(w, "  anomaly %-30s %6d  %s\n", a.Kind, a.Count, doc)
		}
		for _, c := range r.Checks {
			fmt.Fprintf(w, "  %-16s %-8s %s\n", c.Name, c.Verdict, c.Summary)
		}
		for _, n := range out.Result.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	if out.Err != nil {
		fmt.Fprintf(w, "error: %v\n", out.Err)
	}
	fmt.Fprintf(w, "results: %s\n  report: %s\n", out.Run.Dir, out.Run.ReportHTML())
}

func outcomeOf(run results.Run, res *checker.Result) harness.Outcome {
	return harness.Outcome{Run: run, Result: res}
}

// parseSequenceFlag reads --sequence: the steps themselves, or @FILE.
func parseSequenceFlag(v string, nodes []string) (nemesis.Sequence, error) {
	if file, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, usageErr("--sequence %s: %v", v, err)
		}
		v = string(b)
	}
	return nemesis.ParseSequence(v, nodes)
}
