package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/backends"
	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/scenario"
	"os"
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

func newZooCmd(stdout, stderr io.Writer) *cobra.Command {
	var only string
	z := scenario.Zoo{Version: Version}
	cmd := &cobra.Command{
		Use:   "zoo",
		Short: "Run every scenario N times and print how often each found what it must",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := z.Validate(); err != nil {
				return err
			}
			z.Scenarios = scenario.All
			if only != "" {
				z.Scenarios = nil
				for _, n := range strings.Split(only, ",") {
					s, err := scenario.Get(strings.TrimSpace(n))
					if err != nil {
						return usageErr("--scenario: %w", err)
					}
					z.Scenarios = append(z.Scenarios, s)
				}
			}
			if err := backends.PreflightLocal(); err != nil {
				return err
			}
			z.Backend = backends.NewLocal(local.AutoSubnet, nil)
			z.Command = os.Args
			z.Log = func(line string) { fmt.Fprintln(stderr, line) }
			ctx := cmd.Context()
			tallies, err := z.Run(ctx)
			if err != nil {
				if ctx.Err() != nil && err == ctx.Err() {
					printZoo(stdout, tallies)
				}
				return err
			}
			if !printZoo(stdout, tallies) {
				return &exitError{exitcode.Invalid, fmt.Errorf("%w", errQuiet)}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&z.Runs, "runs", 20, "runs per scenario")
	cmd.Flags().StringVar(&only, "scenario", "", "only these scenarios (comma list)")
	cmd.Flags().StringVar(&z.Store, "store", "./store", "store folder")
	cmd.Flags().Int64Var(&z.FirstSeed, "seed", 1, "seed of the first run; run i uses seed+i")
	cmd.Flags().DurationVar(&z.TimeLimit, "time-limit", 0, "override every scenario's time limit (e.g. shorter in CI; never below a manager scenario's minimum)")
	return cmd
}

// printZoo prints the detection table; it reports whether every scenario
// met its bar (Tally.Met).
func printZoo(w io.Writer, rows []*scenario.Tally) bool {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tVERDICT\tMUST SHOW\tAS EXPECTED\tRUNS\tERRORS\tMEDIAN TIME TO FIRST ANOMALY")
	ok := true
	for _, r := range rows {
		med := "-"
		if d, found := r.MedianFirst(); found {
			med = d.Round(10 * time.Millisecond).String()
		}
		s := r.Scenario
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", s.Name, s.Expect, s.Finds(), r.Found, r.Runs, r.Errors, med)
		ok = ok && r.Met()
	}
	tw.Flush()
	for _, r := range rows {
		for i, m := range r.Misses {
			if i == 0 {
				fmt.Fprintf(w, "%s: %d run(s) not as expected:\n", r.Scenario.Name, len(r.Misses))
			}
			fmt.Fprintf(w, "  %s\n", m)
		}
	}
	return ok
}
