package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/results/jepsen"
)

// newExportCmd is `strongcheck export DIR --format jepsen`: a stored run's
// history in Jepsen's EDN, for Knossos and Elle.
func newExportCmd(stdout io.Writer) *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "export DIR",
		Short: "Write a stored run's history in another format (--format jepsen: EDN for Knossos and Elle)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "jepsen" {
				return usageErr("--format %q: the one format is jepsen", format)
			}
			run, h, err := openHistory(args[0])
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			st, err := jepsen.WriteHistory(&buf, h.Ops)
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := stdout.Write(buf.Bytes())
				return err
			}
			if out == "" {
				out = filepath.Join(run.Dir, "history.edn")
			}
			if err := results.WriteFileAtomic(out, buf.Bytes()); err != nil {
				return fmt.Errorf("export: %w", err)
			}
			fmt.Fprintf(stdout, "%s: %d Jepsen ops", out, st.Ops)
			if st.Skipped > 0 {
				fmt.Fprintf(stdout, " (%d entries with no Jepsen form left out)", st.Skipped)
			}
			fmt.Fprintln(stdout)
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "jepsen", "output format: jepsen (EDN, one op map per line)")
	cmd.Flags().StringVar(&out, "out", "", "output file (default DIR/history.edn; - for standard output)")
	return cmd
}

// openHistory opens the run folder dir and reads its history; a folder
// that is no run or has no history is the user's error (exit 254).
func openHistory(dir string) (results.Run, *results.History, error) {
	run, err := results.OpenRun(dir)
	if err != nil {
		return run, nil, usageErr("%s: %v", dir, err)
	}
	h, err := results.ReadFile(run.History())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return run, nil, usageErr("%s: no history (%v)", dir, err)
		}
		return run, nil, err
	}
	return run, h, nil
}

// jepsenFlags are `strongcheck check FILE`'s own flags, for a Jepsen
// history.
type jepsenFlags struct {
	model   string
	history string
	json    bool
}

func addJepsenFlags(fl *pflag.FlagSet) *jepsenFlags {
	f := &jepsenFlags{}
	fl.StringVar(&f.model, "consistency-model", elle.DefaultModel,
		"a Jepsen list-append history: the model to judge ("+strings.Join(elle.ModelNames(), ", ")+")")
	fl.StringVar(&f.history, "jepsen-model", "", "a Jepsen history: judge its register or list-append operations (needed when it has both)")
	fl.BoolVar(&f.json, "json", false, "a Jepsen history: print the check's result as JSON")
	return f
}

// checkJepsenFile judges a Jepsen history (EDN, or jepsen.util log lines):
// a register history with porcupine (values may repeat), a list-append
// history with Elle's method. It writes nothing to disk.
func checkJepsenFile(ctx context.Context, path string, f *jepsenFlags, timeout time.Duration, memory uint64, stdout io.Writer) error {
	if _, err := elle.LookupModel(f.model); err != nil {
		return usageErr("--consistency-model: %v", err)
	}
	h, err := jepsen.ReadFile(path, f.history)
	if err != nil {
		if errors.Is(err, jepsen.ErrHistory) || errors.Is(err, os.ErrNotExist) {
			return usageErr("%s: %v", path, err)
		}
		return err
	}
	var c checker.Check
	switch h.Model {
	case jepsen.ModelListAppend:
		r := elle.Check(ctx, h.Ops, elle.Options{Model: f.model, Timeout: timeout, MemoryBudget: memory})
		c = checker.Check{Name: checker.NameListAppend, Verdict: checker.Verdict(r.Verdict), Summary: r.Summary,
			Error: r.Error, ElapsedNS: r.ElapsedNS, ListAppend: r}
	default:
		c = checker.CheckLinearizable(ctx, h.Ops, checker.Options{Timeout: timeout, MemoryBudget: memory})
	}
	if f.json {
		b, err := json.MarshalIndent(c, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "verdict: %s (%s, a Jepsen %s history of %d operations)\n", strings.ToUpper(string(c.Verdict)), path, h.Model, len(h.Ops))
		fmt.Fprintf(stdout, "  %-13s %-8s %s\n", c.Name, c.Verdict, c.Summary)
		for _, n := range h.Notes {
			fmt.Fprintf(stdout, "  note: %s\n", n)
		}
	}
	if code := exitcode.Of(c.Verdict); code != 0 {
		return &exitError{code, fmt.Errorf("%w", errQuiet)}
	}
	return nil
}
