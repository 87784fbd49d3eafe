package report

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
	"gonum.org/v1/plot/plotter"
)

func TestWriteAllStoredRun(t *testing.T) {
	store := results.Store{Root: filepath.Join(t.TempDir(), "store")}
	run := storedRun(t, store, fixtureStart, genHistory(5000, 10, defaultFaults), fixtureResult())

	// results.json round-trips and the porcupine visualization it cannot
	// hold was written next to it.
	res, err := ReadResult(run.ResultsJSON())
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != checker.Invalid || len(res.Checks) != 5 {
		t.Errorf("results.json: verdict %s, %d checks", res.Verdict, len(res.Checks))
	}
	if got := readFile(t, run.PorcupineHTML("r3")); !strings.Contains(got, "porcupine visualization of r3") {
		t.Errorf("porcupine file: %q", got)
	}

	html := readFile(t, run.ReportHTML())
	for _, want := range []string{
		`<div class="banner invalid" id="verdict">`,
		`An anomaly was found by: linearizable, rpo, stale-read, bank.`,
		`href="linearizable-r3.html"`, // link to porcupine's visualization
		`href="logs/n1.log"`,          // node logs
		`href="history.jsonl"`,        // raw files
		`href="results.json"`,
		`<pre>strongcheck test --workload register,set --nemesis kill-primary,partition --seed 42 --time-limit 10s</pre>`,
		`synchronous_standby_names`,
		`#1 kill-primary n1`, // fault band label in the plots
		`Lost writes: acknowledged, missing from the final state`,
		`canceling wait for synchronous replication due to user request`,
		`n2=streaming/quorum`, // RPO evidence: sync states
		`[200 190 200 200 200]`,
		`n1 → n2`,  // failover
		`190.0 ms`, // RTO
		`Replication lag: bytes the standby has not replayed`,
		`Stale reads on the standbys: synchronous_commit = on`,
		`n2 standby tl1 @0/3000060 replay 0/3000028`, // LSNs at the fault
		`Final balances on the primary <span class="mono">[200 190 200 200 200]</span>`,
		`0.25 cores while the clients ran (62.5µs per operation, 1 Go thread(s), 40,000 operations): what the clients took from a cluster on the same machine; peak memory 96 MiB`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if n := strings.Count(html, "<svg"); n < 4 {
		t.Errorf("%d inline SVG plots, want latency, throughput and 2 lag plots", n)
	}
	for _, bad := range []string{"<script", "http://", "https://", "<?xml"} {
		if strings.Contains(strings.ReplaceAll(html, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) &&
			!(bad == "http://" && onlySVGNamespaces(html)) {
			t.Errorf("report.html holds %q: it must be self-contained and script-free", bad)
		}
	}
	if !strings.Contains(readFile(t, run.SummaryMD()), "❌ strongcheck register-set: INVALID") {
		t.Error("summary.md lacks the verdict")
	}
	if !strings.Contains(readFile(t, run.JUnitXML()), `<failure message="2 of 3000 acknowledged writes lost`) {
		t.Error("junit.xml lacks the rpo failure")
	}

	// Regenerating from the stored files gives the same report: nothing
	// the report shows comes only from memory. (The file list differs: the
	// outputs exist now, with their sizes.)
	body := func(s string) string { return s[:strings.Index(s, `<h2 id="files">`)] }
	before := body(html)
	if err := Write(run); err != nil {
		t.Fatal(err)
	}
	if after := body(readFile(t, run.ReportHTML())); after != before {
		t.Errorf("report from disk differs from the report from memory (%d vs %d bytes)", len(after), len(before))
	}
}

// onlySVGNamespaces reports whether every http:// in s is an SVG or XLink
// namespace name (identifiers, never fetched).
func onlySVGNamespaces(s string) bool {
	s = strings.ReplaceAll(s, "http://www.w3.org/2000/svg", "")
	s = strings.ReplaceAll(s, "http://www.w3.org/1999/xlink", "")
	return !strings.Contains(s, "http://")
}

func TestBadInputIsShownNotFatal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(t *testing.T, run results.Run)
		// wantHTML must appear in report.html, wantJUnit in junit.xml.
		wantHTML  []string
		wantJUnit string
	}{
		{
			name:      "missing history",
			spoil:     func(t *testing.T, run results.Run) { mustRemove(t, run.History()) },
			wantHTML:  []string{"<b>history.jsonl</b>: missing. Not shown: the latency and throughput plots", "No history could be read", `class="banner invalid"`},
			wantJUnit: `<failure message="2 of 3000`,
		},
		{
			name: "torn history",
			spoil: func(t *testing.T, run results.Run) {
				f, err := os.OpenFile(run.History(), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if _, err := f.WriteString(`{"v":1,"index":`); err != nil {
					t.Fatal(err)
				}
			},
			wantHTML:  []string{"The history ends in a torn line", "<svg"},
			wantJUnit: "history.jsonl ends in a torn line",
		},
		{
			name: "corrupt history",
			spoil: func(t *testing.T, run results.Run) {
				writeFile(t, run.History(), "{\"v\":1,\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\nnot json\n")
			},
			wantHTML:  []string{"<b>history.jsonl</b>: corrupt history: line 2"},
			wantJUnit: "corrupt history: line 2",
		},
		{
			name: "results.json of another schema",
			spoil: func(t *testing.T, run results.Run) {
				writeFile(t, run.ResultsJSON(), `{"schema":9,"verdict":"valid","checks":[]}`)
			},
			wantHTML:  []string{"schema 9, this strongcheck reads 1 to 2", `class="banner none"`, "NO RESULT", "<svg"},
			wantJUnit: `<error message="results.json: read result`,
		},
		{
			name:      "results.json missing",
			spoil:     func(t *testing.T, run results.Run) { mustRemove(t, run.ResultsJSON()) },
			wantHTML:  []string{"<b>results.json</b>: missing. Not shown: the verdict", "Exit code 255", "No result: no check can be shown."},
			wantJUnit: `<error message="results.json: missing" type="harness">`,
		},
		{
			name:      "test.json missing",
			spoil:     func(t *testing.T, run results.Run) { mustRemove(t, run.TestJSON()) },
			wantHTML:  []string{"<b>test.json</b>: missing", "test.json is not available; the history spans"},
			wantJUnit: `<failure message="2 of 3000`,
		},
		{
			name:      "lag file corrupt",
			spoil:     func(t *testing.T, run results.Run) { writeFile(t, run.Lag(), "nonsense\n") },
			wantHTML:  []string{"<b>lag.jsonl</b>: lag file: corrupt history: line 1", "No replication lag samples"},
			wantJUnit: "lag.jsonl",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := results.Store{Root: filepath.Join(t.TempDir(), "store")}
			run := storedRun(t, store, fixtureStart, genHistory(2000, 10, defaultFaults), fixtureResult())
			tc.spoil(t, run)
			if err := Write(run); err != nil {
				t.Fatalf("Write failed whole on bad input: %v", err)
			}
			html := readFile(t, run.ReportHTML())
			upper := strings.ToUpper(html)
			for _, w := range tc.wantHTML {
				if !strings.Contains(html, w) && !(w == strings.ToUpper(w) && strings.Contains(upper, w)) {
					t.Errorf("report.html lacks %q", w)
				}
			}
			if j := readFile(t, run.JUnitXML()); !strings.Contains(j, tc.wantJUnit) {
				t.Errorf("junit.xml lacks %q:\n%s", tc.wantJUnit, j)
			}
			if _, err := os.Stat(run.SummaryMD()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestCappedListsSayTheirFullCount(t *testing.T) {
	res := fixtureResult()
	res.Checks[1].RPO.LostCount = 250 // the list holds 2 of them
	res.Checks[1].RPO.UnexpectedCount = 0
	html, err := HTML(&Input{Result: res})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"3,000 acknowledged writes checked; 250 lost", "Lost writes: acknowledged, missing from the final state (the first 2 of 250)"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if sum := string(Summary(&Input{Result: res})); !strings.Contains(sum, "Lost writes (first 2 of 250)") {
		t.Errorf("summary does not give the full count:\n%s", sum)
	}
}

func TestReadResultSchema(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		body string
		err  error
	}{
		{`{"schema":1,"verdict":"valid","checks":[]}`, nil},
		{`{"schema":7,"verdict":"valid"}`, ErrSchema},
		{`{"verdict":"valid"}`, ErrSchema},
	} {
		p := filepath.Join(dir, "results.json")
		writeFile(t, p, tc.body)
		_, err := ReadResult(p)
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.body, err, tc.err)
		}
	}
}

func TestFigureChoosesFormatBySize(t *testing.T) {
	skipUnderRace(t)
	for _, tc := range []struct {
		ops     int
		wantPNG bool
	}{
		{ops: 2000, wantPNG: false},
		{ops: 300000, wantPNG: true},
	} {
		tl := buildTimeline(genHistory(tc.ops, 60, defaultFaults))
		f, err := latencyFigure(tl)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.PNG != ""; got != tc.wantPNG {
			t.Errorf("%d ops: PNG=%v, want %v (note %q)", tc.ops, got, tc.wantPNG, f.Note)
		}
		if tc.wantPNG && !strings.Contains(f.Note, "300000 operations drawn as") {
			t.Errorf("thinning not explained: %q", f.Note)
		}
	}
}

func TestThinKeepsOutliers(t *testing.T) {
	tl := buildTimeline(genHistory(50000, 60, defaultFaults))
	var maxLat int64
	for _, c := range tl.completions {
		maxLat = max(maxLat, c.latencyNS)
	}
	f, err := latencyFigure(tl)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.Note, "drawn as") {
		t.Fatalf("50000 points were not thinned: %q", f.Note)
	}
	// thin() itself: the slowest point survives.
	xys := make(plotter.XYs, len(tl.completions))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, c := range tl.completions {
		xys[i] = plotter.XY{X: seconds(c.invokeNS), Y: float64(c.latencyNS) / 1e6}
		lo, hi = math.Min(lo, math.Log(xys[i].Y)), math.Max(hi, math.Log(xys[i].Y))
	}
	thinned := thin(xys, 60, lo, hi)
	found := false
	for _, p := range thinned {
		if p.Y == float64(maxLat)/1e6 {
			found = true
		}
	}
	if !found || len(thinned) >= len(xys) {
		t.Errorf("thin kept %d of %d points, slowest kept: %v", len(thinned), len(xys), found)
	}
}

// history300k is a 60 s run's worth of operations (300,000 client
// operations, 600,000 history entries) with three faults.
func history300k() *results.History {
	return genHistory(300000, 60, []fault{
		{id: 1, kind: "kill-primary", targets: []string{"n1"}, startS: 10, stopS: 12, slowMS: 200, failPc: 30},
		{id: 2, kind: "partition", targets: []string{"n3"}, startS: 30, stopS: 35, slowMS: 50, failPc: 5},
		{id: 3, kind: "kill-primary", targets: []string{"n2"}, startS: 45, stopS: 47, slowMS: 200, failPc: 30},
	})
}

// storedBigRun stores hist and its test info as a run of test "big".
func storedBigRun(tb testing.TB, hist *results.History) (results.Run, *results.TestInfo) {
	tb.Helper()
	store := results.Store{Root: filepath.Join(tb.TempDir(), "store")}
	run, err := store.NewRun("big", fixtureStart)
	if err != nil {
		tb.Fatal(err)
	}
	writeHistory(tb, run.History(), hist)
	info := fixtureInfo()
	if err := results.WriteTestInfo(run.TestJSON(), info); err != nil {
		tb.Fatal(err)
	}
	return run, info
}

// TestReportSize300k checks that the report of a 60 s run's worth of
// operations stays small enough to mail or attach (< 5 MB), its latency
// plot an inline PNG. How long it takes is BenchmarkWriteAll300k's
// business: a wall-clock bound under -race on a shared machine would
// judge the machine, not the code.
func TestReportSize300k(t *testing.T) {
	if testing.Short() {
		t.Skip("generates a 300k-operation history")
	}
	skipUnderRace(t)
	hist := history300k()
	run, info := storedBigRun(t, hist)
	if err := WriteAll(run, info, hist, fixtureResult()); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(run.ReportHTML())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("300k ops (%d history entries): report.html %.2f MB", len(hist.Ops), float64(st.Size())/1e6)
	if st.Size() >= 5<<20 {
		t.Errorf("report.html is %d bytes, want < 5 MB", st.Size())
	}
	if html := readFile(t, run.ReportHTML()); !regexp.MustCompile(`<img src="data:image/png;base64,`).MatchString(html) {
		t.Error("the 300k-point latency plot is not an inline PNG")
	}
}

// BenchmarkWriteAll300k measures the harness's report step on a 60 s
// run's worth of operations, from memory (WriteAll) and from disk with the
// history parsed (Write, as `strongcheck report DIR` does):
//
//	go test -run '^$' -bench WriteAll300k -benchtime 3x ./report/
func BenchmarkWriteAll300k(b *testing.B) {
	hist := history300k()
	run, info := storedBigRun(b, hist)
	res := fixtureResult()
	b.Run("memory", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := WriteAll(run, info, hist, res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("disk", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := Write(run); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestAppendGitHubSummary(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "summary.md")
	writeFile(t, src, "## run one\n")
	dst := filepath.Join(dir, "step-summary")

	t.Setenv(GitHubSummaryEnv, "")
	if err := AppendGitHubSummary(src); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Fatal("wrote a summary with the variable unset")
	}
	t.Setenv(GitHubSummaryEnv, dst)
	writeFile(t, dst, "earlier step\n")
	for i := 0; i < 2; i++ {
		if err := AppendGitHubSummary(src); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := readFile(t, dst), "earlier step\n## run one\n\n## run one\n\n"; got != want {
		t.Errorf("step summary %q, want %q (appended, never truncated)", got, want)
	}
	if err := AppendGitHubSummary(filepath.Join(dir, "missing.md")); err == nil {
		t.Error("a missing summary is not an error")
	}
}

func TestWriteResultWithoutVisualization(t *testing.T) {
	run := results.Run{Dir: t.TempDir()}
	res := &checker.Result{Schema: checker.ResultSchema, Verdict: checker.Valid, Checks: []checker.Check{
		{Name: checker.NameLinearizable, Verdict: checker.Valid, Linearizable: &checker.LinearizableResult{Keys: 1}},
	}}
	if err := WriteResult(run, res); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(readFile(t, run.ResultsJSON())), &back); err != nil || back["verdict"] != "valid" {
		t.Errorf("results.json: %v %v", back, err)
	}
	if m, _ := filepath.Glob(filepath.Join(run.Dir, "linearizable-*.html")); len(m) != 0 {
		t.Errorf("visualization files written for a valid result: %v", m)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
