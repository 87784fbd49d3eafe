package cli

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/report"
	"github.com/strongcheck/strongcheck/results"
)

func newCheckCmd(stdout, stderr io.Writer) *cobra.Command {
	var timeout time.Duration
	var memMiB uint64
	var model string
	var jf *jepsenFlags
	cmd := &cobra.Command{
		Use:   "check DIR|FILE",
		Short: "Re-run every checker on a stored run (also a partial one) and rewrite its results, or judge a Jepsen history FILE",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if memMiB > math.MaxUint64>>20 {
				return usageErr("--check-memory %d: too large (MiB)", memMiB)
			}
			if fi, err := os.Stat(args[0]); err == nil && !fi.IsDir() {
				return checkJepsenFile(cmd.Context(), args[0], jf, timeout, memMiB<<20, stdout) // jepsen.go
			}
			run, err := results.OpenRun(args[0])
			if err != nil {
				return usageErr("%s: %w", args[0], err)
			}
			if _, err := os.Stat(run.History()); err != nil {
				return usageErr("%s: no history (%w)", args[0], err)
			}
			opts := checker.Options{Timeout: timeout, MemoryBudget: memMiB << 20, Model: checker.Model(model)}
			info, ierr := results.ReadTestInfo(run.TestJSON())
			if ierr == nil {
				opts = opts.WithRun(info) // the run's settings, isolation and own model
			}
			if opts.Model != "" && !checker.ValidModel(opts.Model) {
				return usageErr("--model %q: want one of %s", opts.Model, strings.Join(checker.ModelNames(), ", "))
			}
			// One pass over the history: the checkers' index and the
			// report's timeline, neither keeping its lines.
			tl := report.NewTimeline()
			res, tail, err := checker.CheckFile(cmd.Context(), run.History(), opts, tl.Add)
			if err != nil {
				return historyErr(run, tail.Lines, err)
			}
			tl.End(tail)
			if tail.Torn {
				fmt.Fprintf(stderr, "strongcheck: the history ends in a torn line (line %d, a killed run): checked up to it\n", tail.TornLine)
			}
			if err := report.WriteAllTimeline(run, info, tl, &res); err != nil {
				return err
			}
			printOutcome(stdout, outcomeOf(run, &res), seedOf(info))
			if code := exitcode.Of(res.Verdict); code != 0 {
				return &exitError{code, fmt.Errorf("%w", errQuiet)}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "check-timeout", 60*time.Second, "time limit of the linearizability search per key")
	cmd.Flags().Uint64Var(&memMiB, "check-memory", 4096, "memory budget of the linearizability search in MiB (then: unknown); 0 for none")
	cmd.Flags().StringVar(&model, "model", "", "the model the verdict follows: "+strings.Join(checker.ModelNames(), ", ")+" (default: the run's own, else guide)")
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
				return usageErr("%s: %w", args[0], err)
			}
			in := report.Load(run)
			if errors.Is(in.HistoryErr, results.ErrCorrupt) {
				// A report without the history would replace one made
				// when it was whole: leave the files as they are.
				return historyErr(run, in.HistoryIntact, in.HistoryErr)
			}
			if err := report.WriteInput(in); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "report: %s\n", run.ReportHTML())
			return nil
		},
	}
}

// historyErr says what is wrong with a run's history that cannot be read
// whole, how much of it is intact, and that nothing was rewritten.
func historyErr(run results.Run, intactOps int, err error) error {
	if !errors.Is(err, results.ErrCorrupt) {
		return fmt.Errorf("%s: %w", run.History(), err)
	}
	intact := fmt.Sprintf("; the %d operations before that line are intact", intactOps)
	return fmt.Errorf("%s: %w (not a history this strongcheck wrote, or an edited one%s; no file of the run was rewritten)",
		run.History(), err, intact)
}

func seedOf(info *results.TestInfo) int64 {
	if info == nil {
		return 0
	}
	return info.Seed
}
