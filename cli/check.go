package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/results/report"
)

func newCheckCmd(stdout, stderr io.Writer) *cobra.Command {
	var timeout time.Duration
	var memMiB uint64
	var jf *jepsenFlags
	cmd := &cobra.Command{
		Use:   "check DIR|FILE",
		Short: "Re-run every checker on a stored run (also a partial one) and rewrite its results, or judge a Jepsen history FILE",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fi, err := os.Stat(args[0]); err == nil && !fi.IsDir() {
				return checkJepsenFile(cmd.Context(), args[0], jf, timeout, memMiB<<20, stdout) // jepsen.go
			}
			run, h, err := openHistory(args[0])
			if err != nil {
				return err
			}
			if h.Torn {
				fmt.Fprintf(stderr, "strongcheck: the history ends in a torn line (line %d, a killed run): checked up to it\n", h.TornLine)
			}
			opts := checker.Options{Timeout: timeout, MemoryBudget: memMiB << 20}
			info, ierr := results.ReadTestInfo(run.TestJSON())
			if ierr == nil {
				opts.Settings = info.Settings
				opts.Isolation = info.Extra["isolation"]
			}
			res := checker.CheckHistory(cmd.Context(), h, opts)
			if err := report.WriteAll(run, info, h, &res); err != nil {
				return err
			}
			printOutcome(stdout, outcomeOf(run, &res), seedOf(info))
			if code := res.Verdict.ExitCode(); code != 0 {
				return &exitError{code, fmt.Errorf("%w", errQuiet)}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "check-timeout", 60*time.Second, "time limit of the linearizability search per key")
	cmd.Flags().Uint64Var(&memMiB, "check-memory", 4096, "memory budget of the linearizability search in MiB (then: unknown); 0 for none")
	jf = addJepsenFlags(cmd.Flags())
	return cmd
}

func newReportCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "report DIR",
		Short: "Regenerate report.html, summary.md and junit.xml of a stored run",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := results.OpenRun(args[0])
			if err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			if err := report.Write(run); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "report: %s\n", run.ReportHTML())
			return nil
		},
	}
}

func seedOf(info *results.TestInfo) int64 {
	if info == nil {
		return 0
	}
	return info.Seed
}
