package checker

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/results"
)

// The list-append check (issue 15): Elle's dependency-graph analysis of the
// list-append transactions (package checker/elle), and the anomalies it
// names among the run's.

// NameListAppend is the list-append check.
const NameListAppend = "list-append"

// docTxnIsolation is the PostgreSQL page on transaction isolation: what
// each level allows ("serialization anomaly" is possible below
// Serializable).
const docTxnIsolation = "https://www.postgresql.org/docs/15/transaction-iso.html"

// isolationModel is the model PostgreSQL documents for an isolation level
// (empty: serializable, the workload's default).
func isolationModel(level results.Isolation) (elle.Model, string, error) {
	if level == "" {
		level = results.Serializable
	}
	m, err := elle.ModelForIsolation(string(level))
	return m, string(level), err
}

// CheckListAppend judges the list-append transactions of ops (with the
// nemesis lines, for the nodes' roles) with package elle, against the
// model PostgreSQL documents for opts.Isolation: read committed, snapshot
// isolation for repeatable read, serializable (also for an empty level).
// The result's ListAppend says which other models the history satisfies
// and which anomalies rule the rest out.
func CheckListAppend(ctx context.Context, ops []results.Op, opts Options) Check {
	model, level, err := isolationModel(opts.Isolation)
	if err != nil {
		return Check{Name: NameListAppend, Verdict: Unknown, Error: err.Error(), Summary: "unknown: " + err.Error()}
	}
	r := elle.Check(ctx, ops, elle.Options{Model: model.Name, Timeout: opts.Timeout, MemoryBudget: opts.MemoryBudget,
		FinalPrimary: opts.FinalPrimary})
	return Check{Name: NameListAppend, Verdict: Verdict(r.Verdict), Error: r.Error, ElapsedNS: r.ElapsedNS, ListAppend: r,
		Summary: fmt.Sprintf("judged as %s (the transactions ran at %s): %s", model.Name, level, r.Summary)}
}

// checkListAppend runs CheckListAppend on the lines the index kept and adds
// to an the anomalies the run's isolation model forbids (the kinds that
// level allows, such as write skew at repeatable read, rule out only
// stronger models, which the check's own result lists). Every one is a
// finding but those of a serializable run that involve a transaction on a
// standby: PostgreSQL refuses serializable there, and the read-only
// transactions ran at repeatable read, whose snapshots SSI does not order.
func checkListAppend(ctx context.Context, h *history, opts Options, an *anomalySet) Check {
	ops := make([]results.Op, 0, len(h.appendOps)+len(h.special))
	ops = append(append(ops, h.appendOps...), h.special...)
	slices.SortStableFunc(ops, func(a, b results.Op) int { return cmp.Compare(a.Index, b.Index) })
	c := CheckListAppend(ctx, ops, opts)
	r := c.ListAppend
	if r == nil {
		return c
	}
	model, level, _ := isolationModel(opts.Isolation)
	for _, a := range r.Anomalies {
		if slices.Contains(model.Forbids, a.Kind) {
			addListAppendKind(an, a, level)
		}
	}
	return c
}

// KindReadOnlyAnomaly is a G2-item of exactly Fekete's read-only shape
// among serializable transactions on the primary (elle.ReadOnlyAnomaly):
// PostgreSQL's SSI must stop it and, when the pivot commits and the
// read-only transaction takes its snapshot inside the writer's commit,
// does not. It is a finding (PostgreSQL documents no such exception); the
// run's anomalies name it apart from other G2-items because its cause is
// known: README's "A PostgreSQL SSI bug", reproduced by
// workload.TestIntegrationSSICommitWindow.
const KindReadOnlyAnomaly Kind = "G2-item-read-only"

// addListAppendKind adds one kind's instances: those a standby took part
// in, in a serializable run, as documented; G2-items of the read-only
// anomaly's shape on the primary, in a serializable run, as
// KindReadOnlyAnomaly; the others as findings. The cases become the
// examples of their group.
func addListAppendKind(an *anomalySet, a elle.Anomaly, level string) {
	found := undocumented(fmt.Sprintf("%s forbids %s (%s)", level, a.Kind, lowerFirst(strings.TrimSuffix(a.Explanation, "."))), docTxnIsolation)
	standby := documented("PostgreSQL refuses serializable on a hot standby: read-only transactions there ran at repeatable read, whose snapshots need not fit the primary's serial order", docHotStandby)
	race := undocumented("serializable forbids it, and PostgreSQL's serializable snapshot isolation lets it through when the pivot commits and the read-only "+
		"transaction takes its snapshot while the writer's commit is visible but not yet marked committed for SSI (a PostgreSQL bug, not documented; README: \"A PostgreSQL SSI bug\")", docTxnIsolation)
	serializable := level == "serializable" && isCycle(a.Kind)
	docN := 0
	if serializable {
		docN = a.Standby
	}
	var docCases, raceCases, foundCases []elle.Case
	for _, cs := range a.Cases {
		switch {
		case docN > 0 && involvesStandby(cs):
			docCases = append(docCases, cs)
		case serializable && a.Kind == elle.G2Item && isReadOnlyAnomaly(cs):
			raceCases = append(raceCases, cs)
		default:
			foundCases = append(foundCases, cs)
		}
	}
	for _, g := range []struct {
		kind  Kind
		doc   docVerdict
		n     int
		cases []elle.Case
	}{{Kind(a.Kind), standby, docN, docCases}, {KindReadOnlyAnomaly, race, len(raceCases), raceCases},
		{Kind(a.Kind), found, a.Count - docN - len(raceCases), foundCases}} {
		for i := range g.n {
			// No node or role per instance: only the cases know theirs,
			// and counts by node of a few of them would mislead.
			in := instance{kind: g.kind, doc: g.doc}
			if i < len(g.cases) {
				ex := listAppendExample(g.cases[i])
				in.t = ex.Ops[0].InvokeNS
				in.example = func() Example { return ex }
			}
			an.add(in)
		}
	}
}

func isReadOnlyAnomaly(c elle.Case) bool {
	_, ok := elle.ReadOnlyAnomaly(c)
	return ok
}

func isCycle(k elle.Kind) bool {
	switch k {
	case elle.Internal, elle.DuplicateElements, elle.IncompatibleOrder, elle.UnexpectedElement, elle.G1a, elle.G1b, elle.LostAppend:
		return false
	}
	return true
}

func involvesStandby(c elle.Case) bool {
	for _, t := range c.Txns {
		if t.Role == roleStandby {
			return true
		}
	}
	return false
}

// listAppendExample is a case as the run's anomalies show their examples:
// its sentence, and the transactions as operations.
func listAppendExample(c elle.Case) Example {
	ex := Example{Text: c.Text}
	for _, t := range c.Txns {
		ex.Ops = append(ex.Ops, OpRef{Invoke: t.Invoke, Complete: t.Complete, Process: t.Process, F: results.FTxn, Node: t.Node,
			Type: t.Type, InvokeNS: t.InvokeNS, CompleteNS: t.CompleteNS, SinceFaultNS: -1, Role: t.Role})
	}
	if c.Key != nil {
		ex.Key = strconv.FormatInt(*c.Key, 10)
	}
	if len(c.Txns) > 0 {
		ex.Node, ex.Role = c.Txns[0].Node, c.Txns[0].Role
	}
	return ex
}

// listAppendWhat says what each list-append kind is, in a reviewer's words
// (Adya's anomalies as Elle finds them in list-append histories).
var listAppendWhat = map[elle.Kind]string{
	elle.G0:           "a write cycle: transactions' appends to two keys landed in opposite orders (dirty write)",
	elle.G1a:          "an aborted read: a transaction read an element that a failed transaction appended",
	elle.G1b:          "an intermediate read: a transaction read a list that another transaction extended again before it committed",
	elle.G1c:          "circular information flow: transactions each saw the other's appends",
	elle.GSingle:      "read skew: a cycle with one anti-dependency, a transaction saw part of another's appends and missed the rest",
	elle.GNonadjacent: "a cycle whose anti-dependencies are not adjacent, such as a long fork: two readers saw two independent commits in opposite orders",
	elle.G2Item:       "an anti-dependency cycle (write skew): transactions each missed the other's appends",
	elle.Kind(KindReadOnlyAnomaly): "Fekete's read-only anomaly: a read-only transaction saw a writer's append and missed the append of a transaction that had missed the writer's, " +
		"which PostgreSQL's serializable level lets through inside a commit's window (README: \"A PostgreSQL SSI bug\")",
	elle.Internal:          "an internal inconsistency: a transaction's read did not show its own earlier appends",
	elle.DuplicateElements: "a list read held an element twice",
	elle.IncompatibleOrder: "two reads of a key showed orders that no single list has",
	elle.UnexpectedElement: "a read held an element that no transaction appended",
	elle.LostAppend:        "an acknowledged append missing from the final lists",
}

// listAppendSentence explains n instances of a list-append kind, or ""
// when kind is not one.
func listAppendSentence(kind elle.Kind, n int) string {
	base, order := kind, ""
	for suffix, o := range map[string]string{"-process": " (counting each client's order of its own transactions)",
		"-realtime": " (counting real time: a transaction that completed before another began precedes it)"} {
		if b, ok := strings.CutSuffix(string(kind), suffix); ok {
			base, order = elle.Kind(b), o
		}
	}
	what, ok := listAppendWhat[base]
	if !ok {
		return ""
	}
	return fmt.Sprintf("%d × %s: %s%s.", n, kind, what, order)
}

// lowerFirst lowers a sentence's first letter, to quote it inside another.
func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}
