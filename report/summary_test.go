package report

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/results"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// goldenInput is a fixed run: the full fixture result, a torn history and a
// stored run name, without any file on disk.
func goldenInput() *Input {
	return &Input{
		Run:     results.Run{Dir: filepath.Join("store", "register-set", "20261128T201500.000Z")},
		Info:    fixtureInfo(),
		History: &results.History{Torn: true, TornLine: 20015},
		Result:  fixtureResult(),
		Problems: []Problem{
			{File: "lag.jsonl", Err: "lag file: corrupt history: line 3: unexpected end of JSON input", Missing: "the replication lag plot"},
		},
	}
}

func TestSummaryGolden(t *testing.T) {
	got := Summary(goldenInput())
	path := filepath.Join("testdata", "summary.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSummaryGolden -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("summary.md differs from %s (rerun with -update if the change is intended):\n%s", path, got)
	}
	// Short enough for a pull request comment.
	if n := strings.Count(string(got), "\n"); n > 120 {
		t.Errorf("summary.md has %d lines, want at most 120", n)
	}
}

func TestSummaryWithoutResult(t *testing.T) {
	in := goldenInput()
	in.Result = nil
	in.Problems = []Problem{{File: "results.json", Err: "missing", Missing: "the verdict, the checks and their anomalies"}}
	got := string(Summary(in))
	for _, want := range []string{
		"## ⛔ strongcheck register-set: NO RESULT",
		"There is no readable result for this run: nothing was judged. Exit code 255.",
		"> **results.json**: missing. Not shown: the verdict",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "| check |") {
		t.Error("a summary without a result shows a check table")
	}
}

func TestMarkdownEscape(t *testing.T) {
	for in, want := range map[string]string{
		"a|b":            `a\|b`,
		"<script>":       "&lt;script>",
		"line\nbreak":    "line break",
		"snake_case *x*": `snake\_case \*x\*`,
	} {
		if got := mdEscape(in); got != want {
			t.Errorf("mdEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

// A list-append run's summary has the check's own section: what it was
// judged as, the models satisfied and ruled out (by which kinds), and the
// first case of each anomaly.
func TestSummaryListAppendSection(t *testing.T) {
	in := goldenInput()
	in.Result = &checker.Result{Verdict: checker.Invalid, Checks: []checker.Check{{
		Name: checker.NameListAppend, Verdict: checker.Invalid, Summary: "judged as snapshot-isolation",
		ListAppend: &elle.Result{Model: "snapshot-isolation", Txns: 1200, OK: 900, Info: 3, Fail: 297, Keys: 40, FinalNode: "n2",
			Satisfies: []string{"read-committed"},
			RulesOut:  []elle.RuledOut{{Model: "snapshot-isolation", By: []elle.KindCount{{Kind: elle.GNonadjacent, Count: 7}}}},
			Anomalies: []elle.Anomaly{{Kind: elle.GNonadjacent, Count: 7, AtLeast: true, Standby: 7, Cases: []elle.Case{{Text: "T1 read key 5 as [1] without 2"}}}},
			Notes:     []string{"2 final reads failed"}},
	}}}
	got := string(Summary(in))
	for _, want := range []string{
		"### ❌ list-append",
		"| snapshot-isolation | 1,200 | 900 | 3 | 297 | 40 | n2 |",
		"| read-committed | satisfied |  |",
		"| snapshot-isolation | ruled out | 7 G-nonadjacent |",
		"| G-nonadjacent | ≥ 7 | 7 | T1 read key 5 as [1] without 2 |",
		"- 2 final reads failed",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
}
