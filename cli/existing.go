package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/existing"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

// existingFlags are the flags of `--backend existing`: a cluster the user
// already runs, reached by connection strings.
type existingFlags struct {
	nodes        []string
	nodesFile    string
	faultCmds    []string
	cmdTimeout   time.Duration
	clusterName  string
	allowFaults  string
	allowPromote bool
	keepTables   bool
	dryRun       bool

	parsed   []existing.Node
	commands existing.Commands
}

func (e *existingFlags) addFlags(fl *pflag.FlagSet) {
	fl.StringArrayVar(&e.nodes, "node", nil, "existing backend: a node, NAME=DSN[,app=APPLICATION_NAME][,admin=DSN] (repeatable; the DSN holds no password: see docs/existing.md)")
	fl.StringVar(&e.nodesFile, "nodes-file", "", "existing backend: a file of nodes, one NAME=DSN[,app=..][,admin=..] a line")
	fl.StringArrayVar(&e.faultCmds, "fault-cmd", nil, "existing backend: your command for a fault, VERB=COMMAND (repeatable; verbs kill start stop pause resume partition heal rejoin; see --help)")
	fl.DurationVar(&e.cmdTimeout, "fault-cmd-timeout", 30*time.Second, "existing backend: time limit of one fault command (then its process group is killed and the step fails)")
	fl.StringVar(&e.clusterName, "cluster-name", "", "existing backend: the cluster's name when its primary sets no cluster_name (must agree when it does)")
	fl.StringVar(&e.allowFaults, "allow-faults", "", "existing backend: allow faults on the cluster of this name (the primary's cluster_name or --cluster-name)")
	fl.BoolVar(&e.allowPromote, "allow-promote", false, "existing backend: let strongcheck promote (pg_promote) and re-point standbys (ALTER SYSTEM SET primary_conninfo) itself")
	fl.BoolVar(&e.keepTables, "keep-tables", false, "existing backend: keep the run's schema strongcheck_<run> and its tables")
	fl.BoolVar(&e.dryRun, "dry-run", false, "existing backend: print every action the run would take and exit, writing nothing")
}

func existingHelp() string {
	var b strings.Builder
	b.WriteString("Your cluster (--backend existing, docs/existing.md): fault commands (--fault-cmd VERB=COMMAND):\n")
	for _, v := range existing.Verbs {
		fmt.Fprintf(&b, "  %-10s %s\n", v.Verb, v.Help)
	}
	b.WriteString("with the placeholders:\n")
	for _, p := range existing.Placeholders {
		fmt.Fprintf(&b, "  %-15s %s\n", p.Name, p.Help)
	}
	return b.String()
}

// parseExisting reads the existing backend's nodes and commands; they
// replace --nodes, and --failover defaults to external (the cluster's own
// manager fails over).
func parseExisting(f *testFlags, t *harness.Test) error {
	return existingUsage(parseExistingFlags(f, t))
}

// existingUsage makes the existing backend's user errors exit 254.
func existingUsage(err error) error {
	if err != nil && errors.Is(err, existing.ErrUsage) {
		return &exitError{checker.ExitUsage, err}
	}
	return err
}

func parseExistingFlags(f *testFlags, t *harness.Test) error {
	e := &f.existing
	if f.backend != "existing" {
		if len(e.nodes) > 0 || e.nodesFile != "" || len(e.faultCmds) > 0 || e.dryRun || e.allowFaults != "" || e.allowPromote {
			return usageErr("--node, --nodes-file, --fault-cmd, --allow-faults, --allow-promote and --dry-run are for --backend existing")
		}
		return nil
	}
	e.parsed = nil
	if e.nodesFile != "" {
		ns, err := existing.ParseNodesFile(e.nodesFile)
		if err != nil {
			return err
		}
		e.parsed = ns
	}
	for _, s := range e.nodes {
		n, err := existing.ParseNode(s)
		if err != nil {
			return err
		}
		e.parsed = append(e.parsed, n)
	}
	if err := existing.CheckNodes(e.parsed); err != nil {
		return err
	}
	e.commands = existing.Commands{}
	for _, s := range e.faultCmds {
		if err := existing.ParseFaultCmd(e.commands, s); err != nil {
			return err
		}
	}
	if e.cmdTimeout <= 0 {
		return usageErr("--fault-cmd-timeout %v: must be positive", e.cmdTimeout)
	}
	t.Spec.Nodes = nil
	for _, n := range e.parsed {
		t.Spec.Nodes = append(t.Spec.Nodes, n.Name)
	}
	if f.failover == "" {
		f.failover = nemesis.FailoverExternal
	}
	return nil
}

// checkExisting refuses, before anything starts, what the existing
// backend cannot do: faults without their commands, faults that would
// touch other sessions, link shaping, a manager of strongcheck's.
func checkExisting(f *testFlags, t *harness.Test) error {
	switch {
	case f.linkRate != "":
		return usageErr("--link-rate: the existing backend cannot shape your links")
	case t.Spec.Manager.Managed():
		return usageErr("--manager: with --backend existing your cluster's own manager runs it (--failover external)")
	case f.leaveRunning:
		return usageErr("--leave-db-running: your cluster keeps running anyway; --keep-tables keeps the run's tables")
	case len(t.Spec.Settings) > 0:
		return usageErr("--pg-conf: the existing backend changes no setting of your cluster")
	}
	need, err := verbsNeeded(t.Faults, t.Sequence, f.existing.allowPromote)
	if err != nil {
		return err
	}
	if missing := f.existing.commands.Missing(need...); len(missing) > 0 {
		return usageErr("the planned faults (%s) need --fault-cmd %s (see --help for what each command must do), or run without faults: --nemesis none",
			plannedFaults(t), strings.Join(missing, "=..., --fault-cmd ")+"=...")
	}
	return nil
}

// faultVerbs are the commands each fault kind runs, heals included.
var faultVerbs = map[string][]string{
	nemesis.KillPrimary:       {existing.VerbKill, existing.VerbStart},
	nemesis.KillStandby:       {existing.VerbKill, existing.VerbStart},
	nemesis.Restart:           {existing.VerbStop, existing.VerbStart},
	nemesis.Pause:             {existing.VerbPause, existing.VerbResume},
	nemesis.Partition:         {existing.VerbPartition, existing.VerbHeal},
	nemesis.CrashWhileWaiting: {existing.VerbPartition, existing.VerbHeal, existing.VerbKill, existing.VerbStart},
	nemesis.CutThenKill:       {existing.VerbPartition, existing.VerbHeal, existing.VerbKill, existing.VerbStart},
}

// seqVerbs are the commands each sequence step runs (and the settle step
// that undoes it).
var seqVerbs = map[string][]string{
	"partition": {existing.VerbPartition, existing.VerbHeal}, "heal": {existing.VerbHeal},
	"kill": {existing.VerbKill, existing.VerbStart}, "crash": {existing.VerbKill, existing.VerbStart},
	"stop": {existing.VerbStop, existing.VerbStart}, "start": {existing.VerbStart},
	"pause": {existing.VerbPause, existing.VerbResume}, "resume": {existing.VerbResume},
	"rejoin": {existing.VerbRejoin}, "wait": nil,
}

// verbsNeeded lists the commands the faults need, or refuses a fault the
// backend cannot run on a user's cluster.
func verbsNeeded(faults []nemesis.Fault, seq nemesis.Sequence, allowPromote bool) ([]string, error) {
	var need []string
	for _, fl := range faults {
		v, ok := faultVerbs[fl.Kind]
		if !ok || fl.Kind == nemesis.CutThenKill && fl.Target == "cancel" {
			return nil, usageErr("--nemesis %s: not on a cluster strongcheck did not build (it cancels or stops other sessions' backends, or shapes links)", fl)
		}
		need = append(need, v...)
	}
	for _, s := range seq {
		if s.Verb == "promote" {
			if !allowPromote {
				return nil, usageErr("--sequence %q: promotion needs --allow-promote", s)
			}
			continue
		}
		v, ok := seqVerbs[s.Verb]
		if !ok {
			return nil, usageErr("--sequence %q: not on a cluster strongcheck did not build (it cancels other sessions' commits)", s)
		}
		need = append(need, v...)
	}
	return need, nil
}

// existingOptions are the backend's options for t.
func existingOptions(f *testFlags, t harness.Test, logf func(string, ...any)) existing.Options {
	e := f.existing
	return existing.Options{Nodes: e.parsed, Commands: e.commands, CommandTimeout: e.cmdTimeout, KeepTables: e.keepTables,
		ClusterName: e.clusterName, AllowFaults: e.allowFaults, FaultsPlanned: len(t.Faults) > 0 || len(t.Sequence) > 0,
		AllowPromote: e.allowPromote, Failover: t.Failover.Mode, Logf: logf}
}

// existingBackend attaches runs to the user's cluster.
func existingBackend(opts existing.Options) harness.Backend {
	role := ""
	if len(opts.Nodes) > 0 {
		role = opts.Nodes[0].User
	}
	return harness.Backend{
		Name:       "existing",
		ClientRole: role,
		Up:         existing.BackendUp(opts),
		PostgresVersion: func(c cluster.Cluster) string {
			if d, ok := c.(interface{ PostgresVersion() string }); ok {
				return d.PostgresVersion()
			}
			return ""
		},
	}
}

// preflightExisting attaches to the cluster before a run folder exists:
// an unreachable node, a topology strongcheck would misread or a fault
// the user did not allow for this cluster stops here. With --dry-run it
// prints the plan instead of running it.
func preflightExisting(ctx context.Context, f *testFlags, t harness.Test, stdout io.Writer) (done bool, err error) {
	opts := existingOptions(f, t, nil)
	if f.existing.dryRun {
		opts.Schema = existing.SchemaFor(time.Now().UTC().Format(results.RunTimeFormat))
	}
	c, err := existing.Attach(ctx, opts)
	if err != nil {
		return false, existingUsage(err)
	}
	if !f.existing.dryRun {
		return false, nil
	}
	return true, printDryRun(stdout, c, t)
}

// printDryRun prints every action a run on c would take.
func printDryRun(w io.Writer, c *existing.Cluster, t harness.Test) error {
	topo := c.Topology()
	fmt.Fprintf(w, "dry run: nothing is written to the cluster\n\n1. discovery (read only), on every node as its admin DSN:\n")
	for _, q := range existing.DiscoveryQueries {
		fmt.Fprintf(w, "   %s\n", strings.Join(strings.Fields(q), " "))
	}
	fmt.Fprintf(w, "   found: %s\n", topo.Summary())
	create, drop := c.SchemaSQL()
	fmt.Fprintf(w, "\n2. on the primary %s: the run's schema (named after the run's folder: the name below is an example), then the workloads' tables in it (search_path):\n", topo.Primary)
	for _, s := range create {
		fmt.Fprintf(w, "   %s\n", s)
	}
	fmt.Fprintf(w, "   workloads %s: %d clients for %v, reads from %s\n", strings.Join(t.Workloads, ", "), t.Concurrency, t.TimeLimit, t.ReadFrom)
	fmt.Fprintf(w, "\n3. faults (failover %s):\n", t.Failover)
	if err := printPlannedFaults(w, c, t, topo.Primary); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n4. cleanup: resume, heal and start what the run left paused, cut or down (the commands above); then on the primary:\n   %s\n", drop)
	return nil
}

// printPlannedFaults prints the seeded plan (or the sequence) with each
// command as it would run if the roles are still as discovered.
func printPlannedFaults(w io.Writer, c *existing.Cluster, t harness.Test, primary string) error {
	var standbys []string
	for _, n := range c.Nodes() {
		if n != primary {
			standbys = append(standbys, n)
		}
	}
	sort.Strings(standbys)
	if len(t.Sequence) > 0 {
		fmt.Fprintf(w, "   at %.1fs, the sequence %q\n", (t.Interval / 5).Seconds(), t.Sequence.String())
		for _, s := range t.Sequence {
			for _, v := range seqVerbs[s.Verb] {
				printCmd(w, c, v, s.Args, primary, standbys)
			}
		}
		return nil
	}
	plan := nemesis.Plan(t.Seed, t.Faults, t.Interval, t.TimeLimit)
	if len(plan) == 0 {
		fmt.Fprintf(w, "   none\n")
	}
	for _, st := range plan {
		fmt.Fprintf(w, "   %s\n", st)
		for _, v := range faultVerbs[st.Fault.Kind] {
			printCmd(w, c, v, nil, primary, standbys)
		}
	}
	return nil
}

// printCmd prints verb's command for the nodes it may aim at.
func printCmd(w io.Writer, c *existing.Cluster, verb string, args []string, primary string, standbys []string) {
	targets := append([]string{primary}, standbys...)
	if len(args) > 0 {
		targets = nil
		for _, a := range args {
			switch a {
			case "primary":
				targets = append(targets, primary)
			case "standby":
				targets = append(targets, standbys...)
			default:
				targets = append(targets, a)
			}
		}
	}
	for _, n := range targets {
		var peers []string
		if verb == existing.VerbPartition || verb == existing.VerbHeal {
			peers = slices.DeleteFunc(c.Nodes(), func(x string) bool { return x == n })
		}
		cmd, err := c.Command(verb, n, peers, primary)
		if err != nil {
			cmd = "(" + err.Error() + ")"
		}
		fmt.Fprintf(w, "      %-9s %-8s %s\n", verb, n, cmd)
	}
}

// plannedFaults names the faults of t in one phrase.
func plannedFaults(t *harness.Test) string {
	if len(t.Sequence) > 0 {
		return "the sequence " + t.Sequence.String()
	}
	var out []string
	for _, f := range t.Faults {
		out = append(out, f.String())
	}
	return strings.Join(out, ", ")
}
