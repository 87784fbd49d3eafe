package existing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Verbs of --fault-cmd, in the order help lists them.
const (
	VerbKill      = "kill"
	VerbStart     = "start"
	VerbStop      = "stop"
	VerbPause     = "pause"
	VerbResume    = "resume"
	VerbPartition = "partition"
	VerbHeal      = "heal"
	VerbRejoin    = "rejoin"
)

// Verbs lists every verb with what its command must do, for --help.
var Verbs = []struct{ Verb, Help string }{
	{VerbKill, "crash {node}'s server at once (SIGKILL of the postmaster); it must stay down"},
	{VerbStart, "start {node}'s server (after kill or stop) in whatever role its data says"},
	{VerbStop, "shut {node}'s server down cleanly"},
	{VerbPause, "freeze every process of {node}'s server (SIGSTOP)"},
	{VerbResume, "thaw them (SIGCONT)"},
	{VerbPartition, "cut {node} off from each of {peers} ({peer_hosts}), both directions, established connections included"},
	{VerbHeal, "undo partition for {node} (run once per node that was cut off)"},
	{VerbRejoin, "make {node}, a former primary, a standby of {primary} (pg_rewind and start); without it the old primary is only started and left as your manager leaves it"},
}

// Placeholders are the template fields a command may use.
var Placeholders = []struct{ Name, Help string }{
	{"{node}", "the node's name (as --node gave it)"},
	{"{host}", "the node's host from its DSN"},
	{"{port}", "the node's port from its DSN"},
	{"{peers}", "partition, heal: the nodes it is cut off from, space-separated"},
	{"{peer_hosts}", "partition, heal: their hosts, space-separated"},
	{"{primary}", "rejoin: the primary to follow"},
	{"{primary_host}", "rejoin: its host"},
	{"{primary_port}", "rejoin: its port"},
}

var placeholderRe = regexp.MustCompile(`\{[a-z_]+\}`)

// Commands are the user's fault commands by verb.
type Commands map[string]string

// ParseFaultCmd reads one --fault-cmd value, VERB=COMMAND, into cmds;
// each verb may be given once, and a command may use only Placeholders.
func ParseFaultCmd(cmds Commands, s string) error {
	verb, cmd, ok := strings.Cut(s, "=")
	verb = strings.TrimSpace(verb)
	known := make([]string, 0, len(Verbs))
	for _, v := range Verbs {
		known = append(known, v.Verb)
	}
	if !ok || strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("%w: --fault-cmd %q: want VERB=COMMAND with VERB one of %s", ErrUsage, s, strings.Join(known, ", "))
	}
	if !slices.Contains(known, verb) {
		return fmt.Errorf("%w: --fault-cmd %s: unknown verb (want one of %s)", ErrUsage, verb, strings.Join(known, ", "))
	}
	if _, dup := cmds[verb]; dup {
		return fmt.Errorf("%w: --fault-cmd %s given twice", ErrUsage, verb)
	}
	for _, p := range placeholderRe.FindAllString(cmd, -1) {
		if !slices.ContainsFunc(Placeholders, func(x struct{ Name, Help string }) bool { return x.Name == p }) {
			return fmt.Errorf("%w: --fault-cmd %s: unknown placeholder %s (known: {node} {host} {port} {peers} {peer_hosts} {primary} {primary_host} {primary_port})", ErrUsage, verb, p)
		}
	}
	cmds[verb] = cmd
	return nil
}

// Missing returns the verbs of need that have no command, in order.
func (c Commands) Missing(need ...string) []string {
	var out []string
	for _, v := range need {
		if _, ok := c[v]; !ok && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// Expand fills the template of verb with vars (placeholder name without
// braces → value). Node names and hosts are restricted (ParseNode) to
// characters that need no shell quoting.
func (c Commands) Expand(verb string, vars map[string]string) (string, error) {
	tmpl, ok := c[verb]
	if !ok {
		return "", fmt.Errorf("%w: no --fault-cmd %s=...", ErrUsage, verb)
	}
	var missing []string
	out := placeholderRe.ReplaceAllStringFunc(tmpl, func(p string) string {
		v, ok := vars[strings.Trim(p, "{}")]
		if !ok {
			missing = append(missing, p)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: --fault-cmd %s uses %s, which %s does not have", ErrUsage, verb, strings.Join(missing, " "), verb)
	}
	return out, nil
}

// ErrCommand wraps a fault command that failed: it exited non-zero or ran
// past its timeout.
var ErrCommand = errors.New("fault command failed")

// tailLines is how many of a failed command's last output lines its error
// quotes.
const tailLines = 5

// RunCommand runs cmd with sh -c in a process group of its own, bounded by
// timeout: past it the whole group is killed. A non-zero exit or the
// timeout is an error (wrapping ErrCommand) with the exit status and the
// last lines of the output. The output is returned either way.
func RunCommand(ctx context.Context, cmd string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.Command("sh", "-c", cmd)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrCommand, cmd, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// The group: the shell and whatever it started (ssh, sleep, ...).
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		<-done
		why := fmt.Sprintf("timed out after %v; its process group was killed", timeout)
		if ctx.Err() == context.Canceled {
			why = "interrupted; its process group was killed"
		}
		return out.String(), fmt.Errorf("%w: %q %s%s", ErrCommand, cmd, why, tail(out.String()))
	}
	if err != nil {
		return out.String(), fmt.Errorf("%w: %q: %w%s", ErrCommand, cmd, err, tail(out.String()))
	}
	return out.String(), nil
}

// tail is the last tailLines lines of out, as the end of an error.
func tail(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	s := strings.TrimSpace(strings.Join(lines, "\n"))
	if s == "" {
		return " (no output)"
	}
	return "; last output:\n" + s
}
