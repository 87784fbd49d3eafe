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

// JUnit renders junit.xml: one test suite for the run, one test case per
// checker. An invalid checker is a <failure> (an anomaly); an unknown one is
// an <error> with the reason (unknown is never a pass); a missing or
// unreadable result is a single "result" test case with an <error> (a
// harness error). A valid checker is a passing test case.
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
	if in.History != nil && in.History.Torn {
		notes = append(notes, fmt.Sprintf("history.jsonl ends in a torn line (line %d): the run was killed while writing it", in.History.TornLine))
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
	} else {
		for _, c := range res.Checks {
			tc := junitCase{Name: c.Name, Classname: class, Time: junitTime(time.Duration(c.ElapsedNS))}
			total += time.Duration(c.ElapsedNS)
			switch c.Verdict {
			case checker.Valid:
				tc.SystemOut = c.Summary
			case checker.Invalid:
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
			suite.Cases = append(suite.Cases, tc)
		}
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
	ref := func(r checker.OpRef) string {
		s := fmt.Sprintf("op %d %s %s key=%s value=%s on %s at %s (%s)", r.Invoke, r.Type, r.F, r.Key, derefStr(r.Value), r.Node, fmtSecs(r.InvokeNS), fmtSince(r))
		if r.Warning != "" {
			s += " warning: " + r.Warning
		}
		return s
	}
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
