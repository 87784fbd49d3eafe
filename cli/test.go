package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/harness/config"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/report"
	"github.com/strongcheck/strongcheck/results"
)

func newTestCmd(stdout, stderr io.Writer) *cobra.Command {
	var f *config.Flags
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
` + managerHelp() + `
` + existingHelp(),
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTest(cmd.Context(), f, cmd.Flags().Changed("seed"), stdout, stderr)
		},
	}
	f = config.AddFlags(cmd.Flags())
	// Expanded before parsing (expandScenario); registered for --help.
	cmd.Flags().String("scenario", "", "run a scenario of the zoo (see `strongcheck scenarios`); later flags override its own")
	return cmd
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

func runTest(ctx context.Context, f *config.Flags, seedSet bool, stdout, stderr io.Writer) error {
	t, err := f.Test(seedSet)
	if err != nil {
		return err
	}
	t.Version, t.Command = Version, os.Args
	if f.Backend == config.Existing && f.Existing.DryRun {
		return dryRunExisting(ctx, f, t, stdout)
	}
	choice := f.Choice(t)
	// No run folder for a machine or a cluster that cannot run it.
	if err := choice.Preflight(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(f.Store, 0o755); err != nil {
		return usageErr("--store %s: %w", f.Store, err)
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
	for i := 0; i < f.TestCount; i++ {
		if i > 0 && !seedSet {
			t.Seed = time.Now().UnixNano()
		} else if i > 0 {
			t.Seed++
		}
		out, err := harness.Run(ctx, t, choice.Build())
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
	if code := exitcode.Of(worst); code != 0 {
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
