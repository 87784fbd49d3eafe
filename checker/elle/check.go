package elle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// ErrUnknownModel is wrapped by the error for a model name Models does not
// list.
var ErrUnknownModel = errors.New("unknown consistency model")

// DefaultModel is the model Check judges when Options.Model is empty, as
// Jepsen's Elle does.
const DefaultModel = "strict-serializable"

// Options tune Check. The zero value is usable.
type Options struct {
	// Model is the consistency model the verdict judges (see Models;
	// default DefaultModel). Satisfies and RulesOut cover every model
	// whatever it is.
	Model string
	// Timeout bounds the whole check (0: none); ctx's deadline too. When
	// it runs out the verdict is unknown unless an anomaly the model
	// forbids was already found.
	Timeout time.Duration
	// MemoryBudget, when not 0, is the live heap in bytes past which the
	// check stops the same way.
	MemoryBudget uint64
	// FinalPrimary names the node that was primary when the final reads
	// were taken; empty: the last primary the nemesis recorded.
	FinalPrimary string
}

// analysis is one run of Check.
type analysis struct {
	*index
	opts   Options
	budget *budget
	roles  *roles

	keys           []int64 // key values by key number
	keyOf          map[int64]int32
	mopKey, mopOff []int32 // key number of every micro-operation; each txn's first
	appends        appendTable
	// Per key: the version order (the longest list read), the committed
	// transaction that read it, the writer of each of its elements and the
	// first position whose writer failed (-1: none).
	order    [][]int64
	orderTxn []int32
	writerAt [][]int32
	failedAt []int32

	edges edges
	graph *graph

	cases      map[Kind]*collected
	incomplete map[Kind]bool
	atLeast    map[Kind]bool
	finalNode  string
}

func (x *analysis) note(s string) {
	if len(x.notes) < 20 {
		x.notes = append(x.notes, s)
	}
}

// Check infers the version order of every key from the lists read, builds
// the dependency graph of the transactions (write-write, write-read,
// read-write, real-time and per-process edges), and reports the anomalies
// of ops's list-append transactions (F "txn", workload "append"; final
// reads F "final"), as Elle does: the read anomalies, lost appends against
// the final read, and every cycle class with its shortest cycle. It never
// touches the cluster or the disk. The verdict judges opts.Model; it is
// unknown when the history has no transaction, when values repeat so that
// the history cannot be analysed, or when the budget ran out first.
func Check(ctx context.Context, ops []results.Op, opts Options) *Result {
	start := time.Now()
	if opts.Model == "" {
		opts.Model = DefaultModel
	}
	r := &Result{Model: opts.Model}
	model, err := LookupModel(opts.Model)
	if err != nil {
		r.Verdict, r.Error = Unknown, err.Error()
		r.Summary = "unknown: " + r.Error
		return r
	}
	x := &analysis{index: buildIndex(ops), opts: opts, budget: newBudget(ctx, opts.Timeout, opts.MemoryBudget),
		cases: map[Kind]*collected{}, incomplete: map[Kind]bool{}, atLeast: map[Kind]bool{}}
	x.roles = buildRoles(ops, x.index)
	x.run()
	x.assemble(r, model)
	r.ElapsedNS = time.Since(start).Nanoseconds()
	return r
}

// run does the analysis, phase by phase, as far as the budget allows.
func (x *analysis) run() {
	phases := []func(){
		x.indexKeys, x.buildAppends, x.versionOrders, x.wwEdges, x.readsAndInternal,
		x.realtimeEdges, x.processEdges, x.lostAppends,
		func() { x.graph = newGraph(len(x.txns), &x.edges) },
		x.cycles,
	}
	for _, p := range phases {
		if x.budget.exceeded() {
			break
		}
		p()
	}
	if x.budget.reason != "" {
		// Whatever was not searched may be there.
		for _, c := range classes {
			if x.cases[c.kind] == nil {
				x.incomplete[c.kind] = true
			}
		}
		for _, k := range []Kind{Internal, DuplicateElements, IncompatibleOrder, UnexpectedElement, G1a, G1b, LostAppend} {
			if x.cases[k] == nil {
				x.incomplete[k] = true
			}
		}
	}
}

func (x *analysis) assemble(r *Result, model Model) {
	for _, t := range x.txns {
		switch t.typ {
		case tOK:
			r.OK++
		case tInfo:
			r.Info++
		default:
			r.Fail++
		}
	}
	r.Txns, r.Keys, r.FinalNode = len(x.txns), len(x.keys), x.finalNode
	c := x.edges.count
	r.Edges.WW, r.Edges.WR, r.Edges.RW, r.Edges.Realtime, r.Edges.Process = c[0], c[1], c[2], c[3], c[4]
	counts := map[Kind]int{}
	for _, k := range Kinds() {
		col := x.cases[k]
		if col == nil {
			continue
		}
		counts[k] = col.count
		r.Anomalies = append(r.Anomalies, x.render(k, col))
	}
	for _, k := range Kinds() {
		if x.incomplete[k] {
			r.Incomplete = append(r.Incomplete, k)
		}
	}
	judge(r, counts, x.incomplete)
	r.Verdict = verdictFor(r, model)
	if x.finalNode == "" && len(x.txns) > 0 {
		x.note("lost appends were not judged: no usable final read")
	}
	r.Notes = x.notes
	switch {
	case len(x.txns) == 0:
		r.Verdict, r.Error = Unknown, "the history has no list-append transaction"
	case x.budget.reason != "":
		r.Error = x.budget.reason + " before the check finished"
		if r.Verdict == Valid {
			r.Verdict = Unknown
		}
	case r.Verdict == Unknown:
		r.Error = fmt.Sprintf("the cycle search stopped at its budget before it could rule out %s", kindList(r.Incomplete))
	}
	r.Summary = summary(r)
}

// summary is the one sentence: counts, the strongest models satisfied, the
// weakest ruled out and why.
func summary(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d transactions (%d ok, %d info, %d fail) on %d keys", r.Txns, r.OK, r.Info, r.Fail, r.Keys)
	if s := extremes(r.Satisfies, true); len(s) > 0 {
		fmt.Fprintf(&b, "; satisfies %s", strings.Join(s, ", "))
	}
	var ruled []string
	for _, name := range extremes(ruledNames(r), false) {
		for _, ro := range r.RulesOut {
			if ro.Model != name {
				continue
			}
			var by []string
			for _, kc := range ro.By {
				by = append(by, fmt.Sprintf("%d %s", kc.Count, kc.Kind))
			}
			ruled = append(ruled, fmt.Sprintf("%s (%s)", name, strings.Join(by, ", ")))
		}
	}
	if len(ruled) > 0 {
		fmt.Fprintf(&b, "; rules out %s", strings.Join(ruled, "; "))
	}
	if len(r.Undecided) > 0 {
		fmt.Fprintf(&b, "; undecided: %s", strings.Join(r.Undecided, ", "))
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "; unknown: %s", r.Error)
	}
	return b.String()
}

func ruledNames(r *Result) []string {
	out := make([]string, len(r.RulesOut))
	for i, ro := range r.RulesOut {
		out[i] = ro.Model
	}
	return out
}

// extremes keeps the strongest (or, with strongest false, the weakest)
// of the named models: a model is stronger than another when it forbids
// every kind the other forbids and more.
func extremes(names []string, strongest bool) []string {
	forbids := func(n string) []Kind {
		m, _ := LookupModel(n)
		return m.Forbids
	}
	contains := func(a, b []Kind) bool { // a ⊋ b
		if len(a) <= len(b) {
			return false
		}
		for _, k := range b {
			if !slices.Contains(a, k) {
				return false
			}
		}
		return true
	}
	var out []string
	for _, n := range names {
		covered := false
		for _, o := range names {
			if strongest && contains(forbids(o), forbids(n)) || !strongest && contains(forbids(n), forbids(o)) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, n)
		}
	}
	return out
}

func kindList(ks []Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
