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

	"github.com/strongcheck/strongcheck/cluster/existing"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/harness/config"
	"github.com/strongcheck/strongcheck/internal/usererr"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

// existingHelp documents the existing backend's fault commands, for
// --help.
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

// dryRunExisting attaches to the user's cluster, reading only, and
// prints every action a run of t would take (--dry-run).
func dryRunExisting(ctx context.Context, f *config.Flags, t harness.Test, stdout io.Writer) error {
	opts := f.ExistingOptions(t, nil)
	opts.Schema = existing.SchemaFor(time.Now().UTC().Format(results.RunTimeFormat))
	c, err := existing.Attach(ctx, opts)
	if err != nil {
		if errors.Is(err, existing.ErrUsage) {
			return usererr.Wrap(err)
		}
		return err
	}
	return printDryRun(stdout, c, t)
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
			for _, v := range config.SeqVerbs[s.Verb] {
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
		for _, v := range config.FaultVerbs[st.Fault.Kind] {
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
