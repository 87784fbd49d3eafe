package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/cli/exitcode"
	"github.com/strongcheck/strongcheck/internal/histgen"
)

const fixtures = "../results/jepsen/testdata"

// `strongcheck check FILE` judges a Jepsen history with the exit codes of a
// run: 0 valid, 1 invalid, 254 for a file that is no Jepsen history.
func TestCheckJepsenFile(t *testing.T) {
	for file, want := range map[string]int{
		"valid-repeats.log":           exitcode.Valid,
		"invalid-nil-after-write.log": exitcode.Invalid,
		"list-append.edn":             exitcode.Invalid, // a long fork: not strict serializable
	} {
		code, stdout, stderr := runCLI("check", filepath.Join(fixtures, file))
		assert.Equal(t, want, code, "%s: %s%s", file, stdout, stderr)
		assert.Contains(t, stdout, "verdict:", file)
	}
	code, stdout, _ := runCLI("check", "--consistency-model", "read-committed", filepath.Join(fixtures, "list-append.edn"))
	assert.Equal(t, exitcode.Valid, code, stdout)
	assert.Contains(t, stdout, "rules out snapshot-isolation (1 G-nonadjacent)")

	code, stdout, _ = runCLI("check", "--json", filepath.Join(fixtures, "list-append.edn"))
	require.Equal(t, exitcode.Invalid, code)
	var c checker.Check
	require.NoError(t, json.Unmarshal([]byte(stdout), &c), stdout)
	require.NotNil(t, c.ListAppend)
	assert.Equal(t, elle.GNonadjacent, c.ListAppend.Anomalies[0].Kind)

	bad := filepath.Join(t.TempDir(), "bad.edn")
	require.NoError(t, os.WriteFile(bad, []byte("{:type"), 0o644))
	code, _, stderr := runCLI("check", bad)
	assert.Equal(t, exitcode.Usage, code, stderr)
	assert.Contains(t, stderr, "not a Jepsen history")
	code, _, stderr = runCLI("check", "--consistency-model", "sequential-ish", filepath.Join(fixtures, "list-append.edn"))
	assert.Equal(t, exitcode.Usage, code, stderr)
}

// export writes a stored run's history as EDN; checking that file judges it
// as the run's own check does.
func TestExportJepsen(t *testing.T) {
	run := filepath.Join(t.TempDir(), "run")
	ops := histgen.ListAppend(2, 500, histgen.TxnOptions{Final: true, Stale: 0.3})
	var lines []string
	for i := range ops {
		b, err := ops[i].Marshal()
		require.NoError(t, err)
		lines = append(lines, string(b)+"\n")
	}
	writeHistory(t, run, lines...)
	code, stdout, stderr := runCLI("export", run, "--format", "jepsen")
	require.Equal(t, 0, code, stdout+stderr)
	assert.Contains(t, stdout, "history.edn")
	edn := filepath.Join(run, "history.edn")
	b, err := os.ReadFile(edn)
	require.NoError(t, err)
	assert.Contains(t, string(b), ":f :txn, :value [[:")
	want := elle.Check(t.Context(), ops, elle.Options{Model: "serializable"})
	code, stdout, _ = runCLI("check", "--consistency-model", "serializable", edn)
	assert.Equal(t, exitcode.Of(checker.Verdict(want.Verdict)), code, stdout)
	assert.Contains(t, stdout, want.Summary)

	code, _, stderr = runCLI("export", run, "--format", "knossos")
	assert.Equal(t, exitcode.Usage, code, stderr)
	code, _, _ = runCLI("export", filepath.Join(t.TempDir(), "none"))
	assert.Equal(t, exitcode.Usage, code)
}
