package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/scenario"
)

// expandScenario rewrites `test --scenario NAME ...` into `test <the
// scenario's flags> --name NAME ...`: the user's own flags come after, so
// they override the scenario's.
func expandScenario(args []string) ([]string, error) {
	if len(args) < 2 || args[1] != "test" {
		return args, nil
	}
	out := []string{args[0], "test"}
	var rest []string
	name := ""
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--scenario" && i+1 < len(args):
			name = args[i+1]
			i++
		case strings.HasPrefix(a, "--scenario="):
			name = strings.TrimPrefix(a, "--scenario=")
		default:
			rest = append(rest, a)
		}
	}
	if name == "" {
		return args, nil
	}
	s, err := scenario.Get(name)
	if err != nil {
		return nil, usageErr("--scenario: %w", err)
	}
	out = append(out, s.Args...)
	out = append(out, "--name", s.Name)
	return append(out, rest...), nil
}

func newScenariosCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "scenarios",
		Short: "List the zoo: named scenarios, what each must find, and how to reproduce it",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCENARIO\tVERDICT\tMUST SHOW\tFLAGS")
			for _, s := range scenario.All {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Expect, s.Finds(), strings.Join(quoteArgs(s.Args), " "))
			}
			return tw.Flush()
		},
	}
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " ()'") || a == "" || strings.HasSuffix(a, "=") {
			a = "'" + a + "'"
		}
		out[i] = a
	}
	return out
}

// zooRow is one scenario's tally.
type zooRow struct {
	s      scenario.Scenario
	runs   int
	found  int // runs that were exactly as the scenario says
	errors int
	firsts []time.Duration
	misses []string // why the other runs were not
}

func newZooCmd(stdout, stderr io.Writer) *cobra.Command {
	var runs int
	var only, store string
	var timeLimit time.Duration
	var firstSeed int64
	cmd := &cobra.Command{
		Use:   "zoo",
		Short: "Run every scenario N times and print how often each found what it must",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if firstSeed == 0 {
				return usageErr("--seed 0 is reserved; give another")
			}
			if runs < 1 {
				return usageErr("--runs %d: must be at least 1", runs)
			}
			var list []scenario.Scenario
			if only == "" {
				list = scenario.All
			} else {
				for _, n := range strings.Split(only, ",") {
					s, err := scenario.Get(strings.TrimSpace(n))
					if err != nil {
						return usageErr("--scenario: %w", err)
					}
					list = append(list, s)
				}
			}
			if err := preflightLocal(); err != nil {
				return err
			}
			// Runs go round the scenarios (run 1 of each, then run 2 ...)
			// so that a zoo cut short still covers every scenario.
			var rows []*zooRow
			for _, s := range list {
				rows = append(rows, &zooRow{s: s})
			}
			for i := 0; i < runs; i++ {
				for _, row := range rows {
					s := row.s
					t, err := scenarioTest(s, store, firstSeed+int64(i), timeLimit)
					if err != nil {
						return err
					}
					out, err := harness.Run(cmd.Context(), t, localBackend("auto", nil))
					if err != nil {
						return err
					}
					row.runs++
					status := "error"
					if out.Err != nil || out.Result == nil {
						row.errors++
						fmt.Fprintf(stderr, "%s run %d: error: %v\n", s.Name, i+1, out.Err)
					} else if ok, why := s.Check(out.Result); ok {
						row.found++
						status = "as expected: " + out.Result.ModelsLine()
						if why != "" { // a tolerated PostgreSQL bug: said, and not the scenario's finding
							status = "as expected (" + why + "): " + out.Result.ModelsLine()
						} else if ns := scenario.FirstAnomalyNS(out.Result); ns >= 0 {
							row.firsts = append(row.firsts, time.Duration(ns))
						}
					} else {
						status = "NOT as expected: " + why
						row.misses = append(row.misses, why)
					}
					fmt.Fprintf(stderr, "%s run %d/%d: %s  %s\n", s.Name, i+1, runs, status, out.Run.Dir)
					if cmd.Context().Err() != nil {
						printZoo(stdout, rows)
						return cmd.Context().Err()
					}
				}
			}
			ok := printZoo(stdout, rows)
			if !ok {
				return &exitError{checker.ExitInvalid, fmt.Errorf("%w", errQuiet)}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&runs, "runs", 20, "runs per scenario")
	cmd.Flags().StringVar(&only, "scenario", "", "only these scenarios (comma list)")
	cmd.Flags().StringVar(&store, "store", "./store", "store folder")
	cmd.Flags().Int64Var(&firstSeed, "seed", 1, "seed of the first run; run i uses seed+i")
	cmd.Flags().DurationVar(&timeLimit, "time-limit", 0, "override every scenario's time limit (e.g. shorter in CI; never below a manager scenario's minimum)")
	return cmd
}

// scenarioTest builds the harness.Test of a scenario, seeded per run.
func scenarioTest(s scenario.Scenario, store string, seed int64, timeLimit time.Duration) (harness.Test, error) {
	fl := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f := addTestFlags(fl)
	args := append(append([]string(nil), s.Args...), "--name", s.Name, "--store", store, "--seed", fmt.Sprint(seed))
	if timeLimit > 0 {
		// A manager's failover needs its own time; never less.
		args = append(args, "--time-limit", max(timeLimit, s.MinTimeLimit).String())
	}
	if err := fl.Parse(args); err != nil {
		return harness.Test{}, fmt.Errorf("%w: scenario %s: %w", errFlags, s.Name, err)
	}
	return parseTest(f, true)
}

// printZoo prints the detection table; it reports whether every scenario
// met its bar: as expected in at least 95 % of its runs when it must find
// an anomaly, in every run when it must stay valid (an anomaly there is a
// finding, never a flake).
func printZoo(w io.Writer, rows []*zooRow) bool {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tVERDICT\tMUST SHOW\tAS EXPECTED\tRUNS\tERRORS\tMEDIAN TIME TO FIRST ANOMALY")
	ok := true
	for _, r := range rows {
		med := "-"
		if len(r.firsts) > 0 {
			sort.Slice(r.firsts, func(i, j int) bool { return r.firsts[i] < r.firsts[j] })
			med = r.firsts[len(r.firsts)/2].Round(10 * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.s.Name, r.s.Expect, r.s.Finds(), r.found, r.runs, r.errors, med)
		need := (r.runs*95 + 99) / 100
		if r.s.Expect == checker.Valid {
			need = r.runs
		}
		if r.found < need {
			ok = false
		}
	}
	tw.Flush()
	for _, r := range rows {
		for i, m := range r.misses {
			if i == 0 {
				fmt.Fprintf(w, "%s: %d run(s) not as expected:\n", r.s.Name, len(r.misses))
			}
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	return ok
}
