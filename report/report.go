// Package report turns a stored run into what people read: report.html (one
// self-contained file for a design review), summary.md (for a pull request or
// $GITHUB_STEP_SUMMARY) and junit.xml (for CI), and serves the store over
// HTTP. It reads the files the results package lays out and the checker's
// Result; it never judges a history itself.
//
// Bad input never makes the whole report fail: a missing or corrupt history,
// a results.json of another schema, a missing test.json each become a
// Problem that the report shows in place of what it could not draw.
//
//	run, err := results.OpenRun("store/latest")
//	...
//	err = report.Write(run) // report.html, summary.md, junit.xml
package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
)

// ErrSchema is wrapped by ReadResult's error when results.json was written
// by a strongcheck with another Result schema.
var ErrSchema = errors.New("results.json of another schema version")

// Problem is something the report could not read and what it therefore
// leaves out.
type Problem struct {
	// File is the file's name in the run folder (history.jsonl, ...).
	File string
	// Err says what is wrong with it, in one line.
	Err string
	// Missing says what the report cannot show because of it.
	Missing string
}

// Input is everything a report is made from. Load fills it from a run
// folder; the harness can fill it from memory. Nil fields are shown as
// missing.
type Input struct {
	Run  results.Run
	Info *results.TestInfo
	// History is the run's history in memory, or nil; Timeline is what
	// the report draws of it, built as it was read (Load and the harness
	// never hold the history). Either may stand for the other.
	History  *results.History
	Timeline *Timeline
	Result   *checker.Result
	// HistoryErr is why Load could not read the history whole (nil
	// otherwise), and HistoryIntact how many operations before the bad
	// line it read; Timeline is then nil.
	HistoryErr    error
	HistoryIntact int
	Lag           []results.LagSample
	// LagTorn says the lag file ended in a torn line.
	LagTorn bool
	// Problems are the files that could not be read, in the order found.
	Problems []Problem
}

// Load reads a run folder: test.json, history.jsonl, results.json and
// lag.jsonl. It does not fail: whatever cannot be read is left nil and
// recorded in Problems.
func Load(run results.Run) *Input {
	in := &Input{Run: run}
	var err error
	if in.Info, err = results.ReadTestInfo(run.TestJSON()); err != nil {
		in.addProblem(results.TestJSONName, err, "what was tested (command line, seed, settings)")
	}
	tl := NewTimeline()
	tail, err := results.ScanFile(run.History(), func(op *results.Op) error {
		tl.Add(op)
		return nil
	})
	if err != nil {
		in.HistoryErr, in.HistoryIntact = err, tail.Lines
		in.addProblem(results.HistoryName, err, "the latency and throughput plots and the nemesis timeline")
	} else {
		tl.End(tail)
		in.Timeline = tl
	}
	if in.Result, err = ReadResult(run.ResultsJSON()); err != nil {
		in.addProblem(results.ResultsJSONName, err, "the verdict, the checks and their anomalies")
	}
	in.loadLag()
	return in
}

func (in *Input) loadLag() {
	lag, torn, err := results.ReadLagFile(in.Run.Lag())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// No sampler ran (e.g. an older harness): the plot says so.
	case err != nil:
		in.addProblem(results.LagName, err, "the replication lag plot")
	default:
		in.Lag, in.LagTorn = lag, torn
	}
}

func (in *Input) addProblem(file string, err error, missing string) {
	msg := err.Error()
	if errors.Is(err, fs.ErrNotExist) {
		msg = "missing"
	}
	in.Problems = append(in.Problems, Problem{File: file, Err: msg, Missing: missing})
}

// ReadResult reads results.json at path. A file of another schema version
// is an error wrapping ErrSchema that names both versions.
func ReadResult(path string) (*checker.Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read result: %w", err)
	}
	var head struct {
		Schema *int `json:"schema"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("read result %s: %w", path, err)
	}
	// Schema 1 lacks the models and anomalies; what it has reads the same.
	if head.Schema == nil || *head.Schema < 1 || *head.Schema > checker.ResultSchema {
		got := "none"
		if head.Schema != nil {
			got = fmt.Sprint(*head.Schema)
		}
		return nil, fmt.Errorf("read result %s: schema %s, this strongcheck reads 1 to %d: %w", path, got, checker.ResultSchema, ErrSchema)
	}
	var res checker.Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("read result %s: %w", path, err)
	}
	return &res, nil
}

// WriteResult writes res as results.json and, when the linearizable check
// carries porcupine's visualization (which results.json does not hold),
// writes it next to it as linearizable-<first bad key>.html, where the
// report links to it.
func WriteResult(run results.Run, res *checker.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	if err := results.WriteFileAtomic(run.ResultsJSON(), append(b, '\n')); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	for _, c := range res.Checks {
		if l := c.Linearizable; l != nil && l.Visualization != "" {
			key := "all"
			if len(l.BadKeys) > 0 {
				key = l.BadKeys[0]
			}
			if err := results.WriteFileAtomic(run.PorcupineHTML(key), []byte(l.Visualization)); err != nil {
				return fmt.Errorf("write porcupine visualization: %w", err)
			}
		}
	}
	return nil
}

// Write regenerates report.html, summary.md and junit.xml of a stored run
// from its files (strongcheck report DIR). Unreadable inputs are shown as
// such in the outputs; only a failure to write an output is an error.
func Write(run results.Run) error {
	return WriteInput(Load(run))
}

// WriteAll is for the harness, which has the run's test info, history and
// result in memory: it writes results.json and porcupine's visualization
// (WriteResult), then report.html, summary.md and junit.xml. The lag samples
// are read from the run folder. A nil argument is shown as missing; hist may
// be torn.
func WriteAll(run results.Run, info *results.TestInfo, hist *results.History, res *checker.Result) error {
	var tl *Timeline
	if hist != nil {
		tl = TimelineOf(hist)
	}
	return WriteAllTimeline(run, info, tl, res)
}

// WriteAllTimeline is WriteAll with the history's timeline built as the
// history was read (see Timeline), for runs too long to hold in memory.
func WriteAllTimeline(run results.Run, info *results.TestInfo, tl *Timeline, res *checker.Result) error {
	in := &Input{Run: run, Info: info, Timeline: tl, Result: res}
	if info == nil {
		in.Problems = append(in.Problems, Problem{File: results.TestJSONName, Err: "not given", Missing: "what was tested (command line, seed, settings)"})
	}
	if tl == nil {
		in.Problems = append(in.Problems, Problem{File: results.HistoryName, Err: "not given", Missing: "the latency and throughput plots and the nemesis timeline"})
	}
	if res == nil {
		in.Problems = append(in.Problems, Problem{File: results.ResultsJSONName, Err: "not given", Missing: "the verdict, the checks and their anomalies"})
	} else if err := WriteResult(run, res); err != nil {
		return err
	}
	in.loadLag()
	return WriteInput(in)
}

// WriteInput renders in into report.html, summary.md and junit.xml in
// in.Run's folder, each replaced atomically. All three are attempted; the
// first error is returned.
func WriteInput(in *Input) error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	html, err := HTML(in)
	keep(err)
	if err == nil {
		keep(results.WriteFileAtomic(in.Run.ReportHTML(), html))
	}
	keep(results.WriteFileAtomic(in.Run.SummaryMD(), Summary(in)))
	junit, err := JUnit(in)
	keep(err)
	if err == nil {
		keep(results.WriteFileAtomic(in.Run.JUnitXML(), junit))
	}
	if first != nil {
		return fmt.Errorf("write report: %w", first)
	}
	return nil
}

// Verdict is the run's verdict for display: the result's, or "" when there
// is no result.
func (in *Input) Verdict() checker.Verdict {
	if in.Result == nil {
		return ""
	}
	return in.Result.Verdict
}

// testName is the test's name from test.json, or else from the folder.
func (in *Input) testName() string {
	if in.Info != nil && in.Info.Name != "" {
		return in.Info.Name
	}
	if in.Run.Dir != "" {
		n := in.Run.Name()
		for i := 0; i < len(n); i++ {
			if n[i] == '/' {
				return n[:i]
			}
		}
	}
	return "strongcheck"
}

// timeline is the input's timeline, built from History when only that is
// given; nil when neither is.
func (in *Input) timeline() *Timeline {
	if in.Timeline == nil && in.History != nil {
		in.Timeline = TimelineOf(in.History)
	}
	return in.Timeline
}

// torn reports a history that ended in a torn line, and which.
func (in *Input) torn() (bool, int) {
	if t := in.timeline(); t != nil {
		return t.Torn()
	}
	return false, 0
}
