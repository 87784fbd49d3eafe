package report

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/checker"
)

// The JUnit XML structure as CI systems read it (the common
// testsuites/testsuite/testcase schema of Ant, Jenkins, GitLab, GitHub
// actions' reporters).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out,omitempty"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

// JUnit renders junit.xml: one test suite for the run. A result judged by
// models (schema 2) has one test case per model ("model:guide"), of which
// only the run's own can fail (a <failure> when invalid, an <error> when
// unknown: unknown is never a pass) and the others pass with their
// judgement as output; one per anomaly ("anomaly:stale-read", with
// "(documented)" when PostgreSQL documents it), a <failure> when the run's
// model forbids it; and one per checker, an <error> when it could not
// decide. An older result has one test case per checker, a <failure> when
// it found an anomaly. A missing or unreadable result is a single "result"
// test case with an <error> (a harness error).
func JUnit(in *Input) ([]byte, error) {
	name := in.testName()
	class := "strongcheck." + name
	suite := junitSuite{Name: "strongcheck/" + name}
	if in.Run.Dir != "" {
		suite.Name = "strongcheck/" + in.Run.Name()
	}
	if i := in.Info; i != nil {
		if !i.StartTime.IsZero() {
			suite.Timestamp = i.StartTime.UTC().Format("2006-01-02T15:04:05")
		}
		props := []junitProperty{
			{"seed", strconv.FormatInt(i.Seed, 10)},
			{"backend", i.Backend},
			{"command", shellJoin(i.Command)},
			{"nodes", strings.Join(i.Nodes, ",")},
			{"workloads", strings.Join(i.Workloads, ",")},
			{"nemeses", strings.Join(i.Nemeses, ",")},
			{"strongcheck_version", i.StrongcheckVersion},
			{"postgres_version", i.PostgresVersion},
		}
		for _, p := range props {
			if p.Value != "" {
				suite.Properties = append(suite.Properties, p)
			}
		}
	}
	var notes []string
	for _, p := range in.Problems {
		notes = append(notes, fmt.Sprintf("%s: %s (not shown: %s)", p.File, p.Err, p.Missing))
	}
	if torn, line := in.torn(); torn {
		notes = append(notes, fmt.Sprintf("history.jsonl ends in a torn line (line %d): the run was killed while writing it", line))
	}
	var total time.Duration
	res := in.Result
	if res == nil || len(res.Checks) == 0 {
		msg := "no check ran"
		if res == nil {
			msg = "no readable result"
			for _, p := range in.Problems {
				if p.File == "results.json" {
					msg = "results.json: " + p.Err
				}
			}
		}
		suite.Cases = append(suite.Cases, junitCase{
			Name: "result", Classname: class, Time: "0",
			Error: &junitProblem{Message: msg, Type: "harness", Body: strings.Join(notes, "\n")},
		})
	} else if len(res.Models) == 0 {
		suite.Cases = append(suite.Cases, junitChecks(res, class, &total)...)
	} else {
		suite.Cases = append(suite.Cases, junitModels(res, class)...)
		suite.Cases = append(suite.Cases, junitChecks(res, class, &total)...)
		notes = append(notes, res.Notes...)
	}
	for _, c := range suite.Cases {
		suite.Tests++
		if c.Failure != nil {
			suite.Failures++
		}
		if c.Error != nil {
			suite.Errors++
		}
	}
	if in.Info != nil && !in.Info.EndTime.IsZero() && in.Info.EndTime.After(in.Info.StartTime) {
		total = in.Info.EndTime.Sub(in.Info.StartTime)
	}
	suite.Time = junitTime(total)
	suite.SystemOut = strings.Join(notes, "\n")
	doc := junitSuites{
		Name: "strongcheck", Tests: suite.Tests, Failures: suite.Failures, Errors: suite.Errors,
		Time: suite.Time, Suites: []junitSuite{suite},
	}
	b, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("junit: %w", err)
	}
	return append(append([]byte(xml.Header), b...), '\n'), nil
}

func junitTime(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// junitEvidence is a plain-text account of an invalid check's first
// anomalies, for CI systems that show the failure body.
func junitEvidence(c checker.Check) string {
	var lines []string
	ref := junitRef
	refs := func(title string, rs []checker.OpRef) {
		if len(rs) == 0 {
			return
		}
		lines = append(lines, fmt.Sprintf("%s (%d):", title, len(rs)))
		for _, r := range rs[:min(len(rs), 10)] {
			lines = append(lines, "  "+ref(r))
		}
	}
	switch {
	case c.Linearizable != nil:
		lines = append(lines, "not linearizable keys: "+strings.Join(c.Linearizable.BadKeys, ", "))
		for _, k := range c.Linearizable.BadKeys {
			refs("key "+k, c.Linearizable.Evidence[k])
		}
	case c.RPO != nil:
		if n := fullCount(c.RPO.LostCount, len(c.RPO.Lost)); n > len(c.RPO.Lost) {
			lines = append(lines, fmt.Sprintf("%d lost writes; the first %d:", n, len(c.RPO.Lost)))
		}
		refs("lost writes", c.RPO.Lost)
		refs("reads of values no write produced", c.RPO.Unexpected)
		if len(c.RPO.Divergent) > 0 {
			lines = append(lines, "divergent nodes: "+strings.Join(c.RPO.Divergent, ", "))
		}
	case c.StaleRead != nil:
		lines = append(lines, fmt.Sprintf("%d stale reads, up to %s", c.StaleRead.StaleCount, fmtDur(c.StaleRead.MaxStaleNS)))
		for _, s := range c.StaleRead.Stale[:min(len(c.StaleRead.Stale), 10)] {
			lines = append(lines, fmt.Sprintf("  %s; newer value %s acknowledged %s before", ref(s.Read), derefStr(s.Newer.Value), fmtDur(s.StaleNS)))
		}
	case c.Bank != nil:
		for _, bt := range c.Bank.BadReads[:min(len(c.Bank.BadReads), 10)] {
			lines = append(lines, fmt.Sprintf("  %s: sum %d, want %d", ref(bt.Read), bt.Sum, c.Bank.Total))
		}
		refs("lost transfers", c.Bank.LostTransfers)
		if len(c.Bank.FinalBalances) > 0 {
			lines = append(lines, fmt.Sprintf("final balances %s, expected %s", fmtInts(c.Bank.FinalBalances), fmtInts(c.Bank.ExpectedBalances)))
		}
	}
	return strings.Join(lines, "\n")
}

// junitModels is a test case per model and per anomaly; only the run's own
// model decides what fails.
func junitModels(res *checker.Result, class string) []junitCase {
	var out []junitCase
	for _, m := range res.Models {
		tc := junitCase{Name: "model:" + string(m.Model), Classname: class, Time: "0"}
		switch {
		case m.Model != res.Model:
			tc.SystemOut = m.Summary + " (not this run's model: informational)"
		case m.Verdict == checker.Valid:
			tc.SystemOut = m.Summary
		case m.Verdict == checker.Invalid:
			var body []string
			for _, a := range res.Anomalies {
				if forbidden(m, a) {
					body = append(body, a.Explanation+" "+a.Why+".")
				}
			}
			tc.Failure = &junitProblem{Message: m.Summary, Type: "anomaly", Body: strings.Join(body, "\n")}
		default:
			tc.Error = &junitProblem{Message: "unknown: " + m.Unknown, Type: string(checker.Unknown), Body: m.Summary}
		}
		out = append(out, tc)
	}
	own := res.ModelResult(res.Model)
	for _, a := range res.Anomalies {
		name := "anomaly:" + string(a.Kind)
		if a.Documented {
			name += " (documented)"
		}
		tc := junitCase{Name: name, Classname: class, Time: "0"}
		body := anomalyEvidence(a)
		if own != nil && forbidden(*own, a) {
			tc.Failure = &junitProblem{Message: a.Explanation, Type: "anomaly", Body: a.Why + ".\n" + body}
		} else {
			tc.SystemOut = fmt.Sprintf("allowed by the %s model: %s %s.\n%s", res.Model, a.Explanation, a.Why, body)
		}
		out = append(out, tc)
	}
	return out
}

// forbidden says whether model result m was ruled out by anomaly a.
func forbidden(m checker.ModelResult, a checker.Anomaly) bool {
	for _, r := range m.RuledOutBy {
		if r.Kind == a.Kind && r.Documented == a.Documented {
			return true
		}
	}
	return false
}

// anomalyEvidence is a plain-text account of an anomaly's first examples.
func anomalyEvidence(a checker.Anomaly) string {
	var lines []string
	for _, e := range a.Examples[:min(len(a.Examples), 10)] {
		lines = append(lines, e.Text)
		for _, r := range e.Ops {
			lines = append(lines, "  "+junitRef(r))
		}
	}
	return strings.Join(lines, "\n")
}

// junitChecks is a test case per checker. With models, a checker's
// findings are the anomalies' test cases: a checker fails only when it
// could not decide. Without (an older result), an invalid checker fails.
func junitChecks(res *checker.Result, class string, total *time.Duration) []junitCase {
	var out []junitCase
	for _, c := range res.Checks {
		tc := junitCase{Name: c.Name, Classname: class, Time: junitTime(time.Duration(c.ElapsedNS))}
		*total += time.Duration(c.ElapsedNS)
		switch {
		case c.Verdict == checker.Valid:
			tc.SystemOut = c.Summary
		case c.Verdict == checker.Invalid && len(res.Models) > 0:
			tc.SystemOut = c.Summary + "\n" + junitEvidence(c)
		case c.Verdict == checker.Invalid:
			tc.Failure = &junitProblem{Message: c.Summary, Type: "anomaly", Body: junitEvidence(c)}
		default:
			reason := c.Error
			if reason == "" {
				reason = c.Summary
			}
			tc.Error = &junitProblem{Message: "unknown: " + reason, Type: string(checker.Unknown), Body: c.Summary}
			if c.Verdict != checker.Unknown {
				tc.Error.Message = fmt.Sprintf("verdict %q: %s", c.Verdict, reason)
			}
		}
		out = append(out, tc)
	}
	return out
}

// junitRef is one operation in a line of plain text.
func junitRef(r checker.OpRef) string {
	s := fmt.Sprintf("op %d %s %s key=%s value=%s on %s", r.Invoke, r.Type, r.F, r.Key, derefStr(r.Value), r.Node)
	if r.Role != "" {
		s += " (" + r.Role + ")"
	}
	s += fmt.Sprintf(" at %s (%s)", fmtSecs(r.InvokeNS), fmtSince(r))
	if r.Warning != "" {
		s += " warning: " + r.Warning
	}
	return s
}
