package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/k8s"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/nemesis"
	"github.com/strongcheck/strongcheck/results"
)

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(append([]string{"strongcheck"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// Every user error exits 254 before anything starts, with a message that
// names the problem.
func TestBadArgumentsExit254(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"test", "--workload", "queue"}, "unknown workload"},
		{[]string{"test", "--time-limit", "soon"}, "invalid argument"},
		{[]string{"test", "--concurrency", "0"}, "concurrency"},
		{[]string{"test", "--client-cpus", "-2"}, "client-cpus"},
		{[]string{"test", "--time-limit", "0s"}, "time-limit"},
		{[]string{"test", "--rate", "-1"}, "rate"},
		{[]string{"test", "--nemesis", "meteor"}, "unknown fault"},
		{[]string{"test", "--failover", "promote:n9"}, "no such node"},
		{[]string{"test", "--read-from", "replicas"}, "read-from"},
		{[]string{"test", "--pg-conf", "novalue"}, "key=value"},
		{[]string{"test", "--nodes", "n1"}, "at least 2 nodes"},
		{[]string{"test", "--scenario", "nope"}, "unknown scenario"},
		{[]string{"test", "--backend", "cloud"}, "--backend"},
		{[]string{"test", "--test-count", "0"}, "test-count"},
		{[]string{"test", "--backend", "k8s", "--nemesis", "lag-then-kill"}, "cannot shape links"},
		{[]string{"test", "--manager", "patroni", "--nemesis", "stall-commit"}, "does not stop single server processes"},
		{[]string{"test", "--link-rate", "fast"}, "link rate"},
		{[]string{"test", "--manager", "stolon"}, "unknown manager"},
		{[]string{"test", "--manager", "patroni", "--manager-conf", "sync=on"}, "known: synchronous_mode"},
		{[]string{"test", "--manager", "patroni", "--manager-conf", "ttl"}, "key=value"},
		{[]string{"test", "--manager", "patroni", "--failover", "auto"}, "the manager decides the failover"},
		{[]string{"test", "--manager-conf", "ttl=10"}, "needs --manager"},
		{[]string{"test", "--manager", "pg_auto_failover", "--backend", "k8s"}, "only the local backend"},
		{[]string{"test", "extra"}, "takes 0 argument"},
		{[]string{"check"}, "takes 1 argument"},
		{[]string{"check", "/nonexistent/run"}, "/nonexistent/run"},
		{[]string{"report", "/nonexistent/run"}, "/nonexistent/run"},
		{[]string{"zoo", "--runs", "0"}, "--runs"},
		// Bad flags, wherever they are.
		{[]string{"--no-such-flag"}, "unknown flag"},
		{[]string{"test", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"cluster", "up", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"serve", "--addr"}, "flag needs an argument"},
		{[]string{"serve", "--addr", "nowhere:port"}, "--addr nowhere:port"},
		{[]string{"check", "--check-timeout", "never", "x"}, "invalid argument"},
		// A bad --subnet is refused before anything starts (as root or not).
		{[]string{"test", "--subnet", "nope"}, `--subnet: subnet "nope"`},
		{[]string{"test", "--subnet", "10.213.0.0/30"}, "want an IPv4 network of /8 to /24"},
		{[]string{"cluster", "up", "--subnet", "300.1.1.1/24"}, `subnet "300.1.1.1/24"`},
		{[]string{"cluster", "up", "--subnet", "2001:db8::/64"}, "IPv4"},
		// Unknown subcommands, also of the commands that group others.
		{[]string{"bogus"}, `unknown command "bogus" for "strongcheck"`},
		{[]string{"tset"}, "did you mean test?"},
		{[]string{"cluster", "bogus"}, `unknown command "bogus" for "strongcheck cluster"`},
		{[]string{"kind", "bogus"}, `unknown command "bogus" for "strongcheck kind"`},
		// Unknown scenarios.
		{[]string{"zoo", "--scenario", "nope"}, "unknown scenario"},
		{[]string{"test", "--scenario=nope"}, "unknown scenario"},
		// --leave-db-running only where it can work.
		{[]string{"test", "--leave-db-running", "--backend", "k8s"}, "only the local backend"},
		{[]string{"test", "--leave-db-running", "--test-count", "2"}, "only one run"},
		// --read-all-keys where no transaction would read every key: every
		// path to a test refuses it (the zoo's scenarios too: scenario's
		// TestEveryScenarioMakesATest).
		{[]string{"test", "--read-all-keys"}, "--read-all-keys is for the append workload"},
		{[]string{"test", "--scenario", "sound-default", "--read-all-keys"}, "--read-all-keys is for the append workload"},
		{[]string{"test", "--workload", "append", "--writes-only", "--read-all-keys"}, "--read-all-keys with --writes-only"},
		// A folder without a cluster.
		{[]string{"cluster", "status", "--dir", "/nonexistent/cluster"}, "no cluster in /nonexistent/cluster"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			assert.Equal(t, exitcode.Usage, code, "%v: %s", tc.args, stderr)
			assert.Contains(t, stderr, tc.want, "%v", tc.args)
			assert.NotContains(t, stdout, "results:", "no run was started")
		})
	}
}

// A group command alone prints its help and succeeds.
func TestGroupCommandAloneShowsHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"cluster"}, {"kind"}} {
		code, stdout, stderr := runCLI(args...)
		assert.Equal(t, 0, code, "%v: %s", args, stderr)
		assert.Contains(t, stdout, "Available Commands", "%v", args)
	}
}

// One place maps errors to exit codes: the user's anywhere in a chain is
// 254, even under a harness error; the machine's and the harness's 255.
func TestExitCodeKeepsTheCause(t *testing.T) {
	subnet := fmt.Errorf("%w: %w", cluster.ErrSpec, errors.New(`subnet "x": invalid CIDR address`))
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"a backend's bad argument under a harness error", fmt.Errorf("%w: cluster up: %w", harness.ErrInfra, subnet), exitcode.Usage},
		{"bad test", fmt.Errorf("%w: unknown workload", harness.ErrUsage), exitcode.Usage},
		{"bad fault", fmt.Errorf("%w: meteor", nemesis.ErrConfig), exitcode.Usage},
		{"corrupt history", fmt.Errorf("check: %w", &results.CorruptError{Line: 3, Reason: "x"}), exitcode.Usage},
		{"bad flag", fmt.Errorf("%w: %w", errFlags, errors.New("unknown flag")), exitcode.Usage},
		{"no cluster in --dir", fmt.Errorf("%w in /x: %w", local.ErrNoCluster, os.ErrNotExist), exitcode.Usage},
		{"a verdict", &exitError{exitcode.Invalid, errQuiet}, exitcode.Invalid},
		{"harness error", fmt.Errorf("%w: set-up: %w", harness.ErrInfra, errors.New("connection refused")), exitcode.Harness},
		{"interrupted", fmt.Errorf("%w: %w", harness.ErrInterrupted, context.Canceled), exitcode.Harness},
		{"not root", fmt.Errorf("%w: run as root", local.ErrNotRoot), exitcode.Harness},
		{"subnet in use", fmt.Errorf("%w: cluster up: %w", harness.ErrInfra, local.ErrSubnetInUse), exitcode.Harness},
		{"node did not start", fmt.Errorf("%w: cluster up: %w", harness.ErrInfra, local.ErrNodeStart), exitcode.Harness},
		{"kubernetes", fmt.Errorf("%w: forbidden", k8s.ErrKubernetes), exitcode.Harness},
		{"anything else", errors.New("disk full"), exitcode.Harness},
	} {
		assert.Equal(t, tc.want, exitCode(tc.err), tc.name)
	}
}

// An I/O error reading a history is the machine's, not the user's.
func TestCheckUnreadableHistoryExit255(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, results.HistoryName), 0o755)) // a folder: read fails
	require.NoError(t, os.WriteFile(filepath.Join(dir, results.TestJSONName), []byte("{}"), 0o644))
	code, _, stderr := runCLI("check", dir)
	assert.Equal(t, exitcode.Harness, code, stderr)
	assert.Contains(t, stderr, "is a directory")
}

func writeHistory(t *testing.T, dir string, lines ...string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, results.HistoryName), []byte(strings.Join(lines, "")), 0o644))
}

const (
	inv0 = `{"v":1,"index":0,"time":1,"process":0,"type":"invoke","f":"add","workload":"set","value":1}` + "\n"
	ok1  = `{"v":1,"index":1,"time":2,"process":0,"type":"ok","f":"add","workload":"set","value":1,"node":"n1"}` + "\n"
)

// A corrupt or foreign history is a bad argument naming the line, for
// check and for report, and neither rewrites a file of the run (a report
// made when the history was whole stays); a torn one (a killed run) is
// checked up to the tear and, without final reads, is unknown.
func TestCheckCorruptAndTornHistories(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, want string
		lines      []string
	}{
		{"corrupt", "line 2: invalid character", []string{inv0, "this is not json\n", ok1}},
		{"foreign", "line 1: schema version 9", []string{strings.Replace(inv0, `"v":1`, `"v":9`, 1)}},
		{"corrupt-tail", "the 2 operations before that line are intact", []string{inv0, ok1, "garbage\n"}},
	} {
		for _, cmd := range []string{"check", "report"} {
			t.Run(tc.name+" "+cmd, func(t *testing.T) {
				run := filepath.Join(dir, tc.name+"-"+cmd)
				writeHistory(t, run, tc.lines...)
				old := filepath.Join(run, results.ReportHTMLName)
				require.NoError(t, os.WriteFile(old, []byte("the report of the whole history"), 0o644))
				code, _, stderr := runCLI(cmd, run)
				assert.Equal(t, exitcode.Usage, code, stderr)
				assert.Contains(t, stderr, "corrupt history")
				if cmd == "check" {
					assert.Contains(t, stderr, tc.want)
				}
				assert.Contains(t, stderr, "no file of the run was rewritten")
				b, err := os.ReadFile(old)
				require.NoError(t, err)
				assert.Equal(t, "the report of the whole history", string(b))
				for _, f := range []string{results.ResultsJSONName, results.SummaryMDName, results.JUnitXMLName} {
					_, err := os.Stat(filepath.Join(run, f))
					assert.True(t, errors.Is(err, os.ErrNotExist), "%s written", f)
				}
			})
		}
	}

	torn := filepath.Join(dir, "torn")
	code, stdout, stderr := 0, "", ""
	writeHistory(t, torn, inv0, ok1, `{"v":1,"index":2,"ti`)
	code, stdout, stderr = runCLI("check", torn)
	assert.Equal(t, exitcode.Unknown, code, stdout+stderr)
	assert.Contains(t, stderr, "torn line (line 3")
	assert.Contains(t, stdout, "UNKNOWN")
	for _, f := range []string{results.ResultsJSONName, results.ReportHTMLName, results.SummaryMDName, results.JUnitXMLName} {
		_, err := os.Stat(filepath.Join(torn, f))
		assert.NoError(t, err, "check rewrites %s", f)
	}
}

func TestExpandScenarioPutsUserFlagsLast(t *testing.T) {
	args, err := expandScenario([]string{"strongcheck", "test", "--seed", "5", "--scenario", "sound-default", "--time-limit", "9s"})
	require.NoError(t, err)
	joined := strings.Join(args, " ")
	assert.True(t, strings.HasPrefix(joined, "strongcheck test --time-limit 30s"), joined)
	assert.True(t, strings.HasSuffix(joined, "--name sound-default --seed 5 --time-limit 9s"), joined)
	same, err := expandScenario([]string{"strongcheck", "check", "--scenario", "x"})
	require.NoError(t, err)
	assert.Equal(t, []string{"strongcheck", "check", "--scenario", "x"}, same, "only test takes --scenario")
}

func TestScenariosListsTheZoo(t *testing.T) {
	code, stdout, _ := runCLI("scenarios")
	require.Equal(t, 0, code)
	for _, name := range []string{"async-failover", "sound-default", "cancel-sync-wait"} {
		assert.Contains(t, stdout, name)
	}
}
