package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
)

// The generic structure the usual JUnit schema (the Ant/Jenkins
// junit-10.xsd that CI systems accept) requires, read back with
// encoding/xml independently of the writer's types.
type xProblem struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Body    string     `xml:",chardata"`
}

type xProperty struct {
	Attrs []xml.Attr `xml:",any,attr"`
}

type xCase struct {
	Attrs   []xml.Attr `xml:",any,attr"`
	Failure []xProblem `xml:"failure"`
	Error   []xProblem `xml:"error"`
	Skipped []xProblem `xml:"skipped"`
}

type xSuite struct {
	Attrs      []xml.Attr `xml:",any,attr"`
	Properties []struct {
		Property []xProperty `xml:"property"`
	} `xml:"properties"`
	Cases []xCase `xml:"testcase"`
}

type xSuites struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Suites  []xSuite   `xml:"testsuite"`
}

func attr(attrs []xml.Attr, name string) (string, bool) {
	for _, x := range attrs {
		if x.Name.Local == name {
			return x.Value, true
		}
	}
	return "", false
}

var junitNumber = regexp.MustCompile(`^\d+(\.\d+)?$`)

// validateJUnit checks the document against the schema's rules: the root
// is testsuites with name, tests, failures, errors and time; each testsuite
// has name, tests, failures, errors, time with counts matching its test
// cases; each testcase has name, classname and time, and at most one of
// failure, error, skipped, each with a message; times are decimals; the
// timestamp, when present, is ISO 8601 without a zone. It returns every
// violation found.
func validateJUnit(b []byte) (doc xSuites, problems []string) {
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if !bytes.HasPrefix(b, []byte(xml.Header)) {
		errorf("no XML declaration")
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		errorf("junit.xml does not parse: %v", err)
		return doc, problems
	}
	if doc.XMLName.Local != "testsuites" {
		errorf("root element %q, want testsuites", doc.XMLName.Local)
		return doc, problems
	}
	need := func(what string, a []xml.Attr, names ...string) map[string]string {
		out := map[string]string{}
		for _, n := range names {
			v, ok := attr(a, n)
			if !ok {
				errorf("%s lacks required attribute %q", what, n)
			}
			out[n] = v
		}
		return out
	}
	num := func(what, v string) int {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errorf("%s = %q, want a count", what, v)
		}
		return n
	}
	top := need("testsuites", doc.Attrs, "name", "tests", "failures", "errors", "time")
	if len(doc.Suites) == 0 {
		errorf("no testsuite")
		return doc, problems
	}
	var tests, failures, errs int
	for _, s := range doc.Suites {
		a := need("testsuite", s.Attrs, "name", "tests", "failures", "errors", "time")
		if !junitNumber.MatchString(a["time"]) {
			errorf("testsuite time %q", a["time"])
		}
		if ts, ok := attr(s.Attrs, "timestamp"); ok && !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$`).MatchString(ts) {
			errorf("timestamp %q is not ISO 8601 without a zone", ts)
		}
		for _, ps := range s.Properties {
			for _, p := range ps.Property {
				need("property", p.Attrs, "name", "value")
			}
		}
		var f, e int
		for _, c := range s.Cases {
			ca := need("testcase", c.Attrs, "name", "classname", "time")
			if !junitNumber.MatchString(ca["time"]) {
				errorf("testcase %s time %q", ca["name"], ca["time"])
			}
			if len(c.Failure)+len(c.Error)+len(c.Skipped) > 1 {
				errorf("testcase %s has more than one of failure, error, skipped", ca["name"])
			}
			for _, p := range append(append(c.Failure, c.Error...), c.Skipped...) {
				if m, _ := attr(p.Attrs, "message"); m == "" {
					errorf("testcase %s: %s without a message", ca["name"], p.XMLName.Local)
				}
			}
			f += len(c.Failure)
			e += len(c.Error)
		}
		if num("tests", a["tests"]) != len(s.Cases) || num("failures", a["failures"]) != f || num("errors", a["errors"]) != e {
			errorf("testsuite counts tests=%s failures=%s errors=%s, cases say %d/%d/%d", a["tests"], a["failures"], a["errors"], len(s.Cases), f, e)
		}
		tests, failures, errs = tests+len(s.Cases), failures+f, errs+e
	}
	if num("tests", top["tests"]) != tests || num("failures", top["failures"]) != failures || num("errors", top["errors"]) != errs {
		errorf("testsuites counts %v, suites say %d/%d/%d", top, tests, failures, errs)
	}
	return doc, problems
}

func TestJUnit(t *testing.T) {
	unknown := &checker.Result{Schema: checker.ResultSchema, Verdict: checker.Unknown, Checks: []checker.Check{
		{Name: checker.NameLinearizable, Verdict: checker.Unknown, Summary: "2 keys timed out.", Error: "time limit 60s reached on keys r1, r2", ElapsedNS: 60e9},
		{Name: checker.NameRPO, Verdict: checker.Valid, Summary: "All 10 writes survived.", ElapsedNS: 1e6},
	}}
	for _, tc := range []struct {
		name string
		in   *Input
		// want: per test case name, "pass", "failure" or "error".
		want map[string]string
		// wantText must appear in the document.
		wantText []string
	}{
		{
			name: "invalid",
			in:   &Input{Run: results.Run{Dir: "store/register-set/20261128T201500.000Z"}, Info: fixtureInfo(), Result: fixtureResult()},
			want: map[string]string{"linearizable": "failure", "rpo": "failure", "stale-read": "failure", "bank": "failure", "availability": "pass"},
			wantText: []string{
				`<property name="seed" value="42">`,
				`lost writes (2):`,
				`canceling wait for synchronous replication due to user request`,
				`classname="strongcheck.register-set"`,
				`<testsuite name="strongcheck/register-set/20261128T201500.000Z"`,
				`timestamp="2026-11-28T20:15:00"`,
				`time="10.000"`, // suite time: the run's duration
			},
		},
		{
			name:     "unknown is an error, never a pass",
			in:       &Input{Info: fixtureInfo(), Result: unknown},
			want:     map[string]string{"linearizable": "error", "rpo": "pass"},
			wantText: []string{`message="unknown: time limit 60s reached on keys r1, r2" type="unknown"`},
		},
		{
			name: "judged by models: only the run's own model fails",
			in:   &Input{Info: fixtureInfo(), Result: modelResult(checker.ModelPostgres)},
			want: map[string]string{"model:guide": "pass", "model:postgres": "pass", "model:linearizable": "pass",
				"anomaly:stale-read (documented)": "pass", "stale-read": "pass", "faults": "pass"},
			wantText: []string{"allowed by the postgres model", "model: informational"},
		},
		{
			name: "judged by models: the guide's failure and its anomaly",
			in:   &Input{Info: fixtureInfo(), Result: modelResult(checker.ModelGuide)},
			want: map[string]string{"model:guide": "failure", "model:postgres": "pass", "model:linearizable": "pass",
				"anomaly:stale-read (documented)": "failure", "stale-read": "pass", "faults": "pass"},
			wantText: []string{`<failure message="rules out guide: 3 stale-read (documented)" type="anomaly">`, "op 7 ok read key=k1"},
		},
		{
			name: "judged by models: a fault that did not happen is an error",
			in: &Input{Info: fixtureInfo(), Result: func() *checker.Result {
				r := modelResult(checker.ModelPostgres)
				r.Models[1] = checker.ModelResult{Model: checker.ModelPostgres, Verdict: checker.Unknown, Unknown: "faults: fault 2 (partition) step partition: fault did not take effect", Summary: "cannot decide postgres"}
				r.Checks[1] = checker.Check{Name: checker.NameFaults, Verdict: checker.Unknown, Error: "fault 2 (partition) step partition: fault did not take effect"}
				return r
			}()},
			want: map[string]string{"model:guide": "pass", "model:postgres": "error", "model:linearizable": "pass",
				"anomaly:stale-read (documented)": "pass", "stale-read": "pass", "faults": "error"},
			wantText: []string{"fault did not take effect"},
		},
		{
			name:     "missing result is a harness error",
			in:       &Input{Info: fixtureInfo(), Problems: []Problem{{File: "results.json", Err: "missing", Missing: "the verdict"}}},
			want:     map[string]string{"result": "error"},
			wantText: []string{`<error message="results.json: missing" type="harness">`},
		},
		{
			name:     "no check ran",
			in:       &Input{Result: &checker.Result{Schema: checker.ResultSchema, Verdict: checker.Unknown}},
			want:     map[string]string{"result": "error"},
			wantText: []string{`message="no check ran"`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := JUnit(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			doc, problems := validateJUnit(b)
			for _, p := range problems {
				t.Error(p)
			}
			if len(doc.Suites) == 0 {
				t.FailNow()
			}
			got := map[string]string{}
			for _, c := range doc.Suites[0].Cases {
				name, _ := attr(c.Attrs, "name")
				switch {
				case len(c.Failure) > 0:
					got[name] = "failure"
				case len(c.Error) > 0:
					got[name] = "error"
				case len(c.Skipped) > 0:
					got[name] = "skipped"
				default:
					got[name] = "pass"
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("test cases %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("test case %s: %s, want %s", k, got[k], v)
				}
			}
			for _, w := range tc.wantText {
				if !strings.Contains(string(b), w) {
					t.Errorf("junit.xml lacks %q:\n%s", w, b)
				}
			}
		})
	}
}

// The validator itself must reject what the schema rejects.
func TestValidateJUnitRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"missing classname": `<testsuites name="s" tests="1" failures="0" errors="0" time="0"><testsuite name="a" tests="1" failures="0" errors="0" time="0"><testcase name="x" time="0"/></testsuite></testsuites>`,
		"wrong counts":      `<testsuites name="s" tests="1" failures="0" errors="0" time="0"><testsuite name="a" tests="1" failures="0" errors="0" time="0"><testcase name="x" classname="c" time="0"><failure message="m"/></testcase></testsuite></testsuites>`,
		"bad time":          `<testsuites name="s" tests="1" failures="0" errors="0" time="0"><testsuite name="a" tests="1" failures="0" errors="0" time="1s"><testcase name="x" classname="c" time="0"/></testsuite></testsuites>`,
	} {
		if _, problems := validateJUnit([]byte(xml.Header + doc)); len(problems) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// modelResult is a run judged by models: stale reads on a standby, which
// PostgreSQL documents, rule out the guide and linearizability.
func modelResult(model checker.Model) *checker.Result {
	stale := checker.Anomaly{Kind: checker.KindStaleRead, Documented: true, Count: 3, Why: "with synchronous_commit=on ...",
		Explanation: "3 reads returned a value older than a write acknowledged before the read began.",
		Examples:    []checker.Example{{Text: "read of k1 on n2 (standby) returned 4", Ops: []checker.OpRef{{Invoke: 7, Type: "ok", F: "read", Key: "k1", Node: "n2", Role: "standby"}}}}}
	ruled := []checker.Ruling{{Kind: checker.KindStaleRead, Count: 3, Documented: true}}
	r := &checker.Result{Schema: checker.ResultSchema, Model: model, Anomalies: []checker.Anomaly{stale},
		Models: []checker.ModelResult{
			{Model: checker.ModelGuide, Verdict: checker.Invalid, Summary: "rules out guide: 3 stale-read (documented)", RuledOutBy: ruled},
			{Model: checker.ModelPostgres, Verdict: checker.Valid, Summary: "satisfies postgres"},
			{Model: checker.ModelLinearizable, Verdict: checker.Invalid, Summary: "rules out linearizable: 3 stale-read (documented)", RuledOutBy: ruled},
		},
		Checks: []checker.Check{
			{Name: checker.NameStaleRead, Verdict: checker.Invalid, Summary: "3 of 100 reads were stale"},
			{Name: checker.NameFaults, Verdict: checker.Valid, Summary: "all 4 nemesis steps took effect"},
		}}
	r.Verdict = r.ModelResult(model).Verdict
	return r
}
