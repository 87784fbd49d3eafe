// Package cli is strongcheck's command line: one small file per command,
// each turning flags into calls of library code. Run is the whole program
// but for os.Exit, so tests can call it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/internal/usererr"
)

// Version is strongcheck's version, set at build time with
// -ldflags "-X github.com/strongcheck/strongcheck/cli.Version=...".
var Version = "0.1.0-dev"

// exitError carries an exit code chosen by a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is an error the user caused with what they typed.
func usageErr(format string, args ...any) error {
	return usererr.New(format, args...)
}

// Run runs strongcheck with args (program name first) and returns the exit
// code: 0 valid, 1 invalid, 2 unknown, 254 bad arguments, 255 harness or
// infrastructure error.
func Run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args, err := expandScenario(args)
	if err != nil {
		fmt.Fprintf(stderr, "strongcheck: %v\n", err)
		return exitCode(err)
	}
	root := newRoot(stdout, stderr)
	root.SetArgs(args[1:])
	root.SetOut(stdout)
	root.SetErr(stderr)
	err = root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	code := exitCode(err)
	if !errors.Is(err, errQuiet) {
		fmt.Fprintf(stderr, "strongcheck: %v\n", err)
	}
	return code
}

// errQuiet marks an exit whose reason was already printed (a verdict).
var errQuiet = errors.New("quiet")

// exitCode maps an error to the documented exit codes; one place decides.
// A code chosen by a command (exitError) wins; otherwise an error the user
// caused anywhere in the chain (usererr.Is: a flag, an argument, a cluster
// specification, a fault, a history file or folder) is 254, even when a
// harness error wraps it (a backend refusing an argument once the run
// started); everything else, the machine's or the harness's
// (local.ErrNotRoot, local.ErrSubnetInUse, k8s.ErrKubernetes,
// harness.ErrInfra, ...), is 255.
func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if usererr.Is(err) {
		return exitcode.Usage
	}
	return exitcode.Harness
}

// errFlags wraps cobra's own flag errors.
var errFlags = usererr.Sentinel("bad arguments")

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "strongcheck",
		Short: "Jepsen-style tests of PostgreSQL synchronous replication",
		Long: `strongcheck provisions a PostgreSQL cluster of one primary and synchronous standbys,
drives concurrent clients against it while injecting faults, and checks the recorded history:
linearizability, lost acknowledged writes (RPO), stale reads on standbys, bank totals, availability.

Exit codes: 0 valid, 1 invalid (an anomaly was found), 2 unknown (a check could not decide),
254 bad arguments, 255 harness or infrastructure error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w (see %s --help)", errFlags, err, c.CommandPath())
	})
	root.AddCommand(newTestCmd(stdout, stderr), newCheckCmd(stdout, stderr), newReportCmd(stdout, stderr),
		newClusterCmd(stdout, stderr), newServeCmd(stdout, stderr), newScenariosCmd(stdout), newZooCmd(stdout, stderr), newKindCmd(stdout, stderr),
		newExportCmd(stdout))
	for _, c := range root.Commands() {
		c.SilenceUsage = true
	}
	rejectUnknownCommands(root)
	return root
}

// rejectUnknownCommands makes every command that only groups others (the
// root, cluster, kind) refuse an unknown subcommand with a bad-arguments
// error: cobra itself would exit 0 printing help ("cluster bogus") or
// return an error that names no cause. Alone, such a command prints its
// help.
func rejectUnknownCommands(c *cobra.Command) {
	for _, sub := range c.Commands() {
		rejectUnknownCommands(sub)
	}
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		hint := ""
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2 // cobra's own default
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
		}
		return fmt.Errorf("%w: unknown command %q for %q%s (see %s --help)", errFlags, args[0], cmd.CommandPath(), hint, cmd.CommandPath())
	}
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
}

// argsError makes cobra's positional-argument errors exit 254.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%w: %s takes %d argument(s), got %d (see --help)", errFlags, cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
