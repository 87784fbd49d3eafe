package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
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
		{[]string{"--no-such-flag"}, "unknown flag"},
	} {
		code, _, stderr := runCLI(tc.args...)
		assert.Equal(t, checker.ExitUsage, code, "%v: %s", tc.args, stderr)
		assert.Contains(t, stderr, tc.want, "%v", tc.args)
	}
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

// A corrupt history is a bad argument naming the line; a torn one (a killed
// run) is checked up to the tear and, without final reads, is unknown.
func TestCheckCorruptAndTornHistories(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt")
	writeHistory(t, corrupt, inv0, "this is not json\n", ok1)
	code, _, stderr := runCLI("check", corrupt)
	assert.Equal(t, checker.ExitUsage, code, stderr)
	assert.Contains(t, stderr, "line 2")

	foreign := filepath.Join(dir, "foreign")
	writeHistory(t, foreign, strings.Replace(inv0, `"v":1`, `"v":9`, 1))
	code, _, stderr = runCLI("check", foreign)
	assert.Equal(t, checker.ExitUsage, code, stderr)
	assert.Contains(t, stderr, "schema version 9")

	torn := filepath.Join(dir, "torn")
	writeHistory(t, torn, inv0, ok1, `{"v":1,"index":2,"ti`)
	code, stdout, stderr := runCLI("check", torn)
	assert.Equal(t, checker.ExitUnknown, code, stdout+stderr)
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
