package checker

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/strongcheck/strongcheck/results"
)

// Register operation kinds in the porcupine model.
const (
	opRead uint8 = iota
	opWrite
	opCAS
)

// zero is the initial state of every register.
var zero int64

// registerModel is a register with read, write and compare-and-set, one
// per key. The input of an operation is its *rop (the output is unused);
// states are *int64 pointing at the value of the rop that wrote it, so a
// step never allocates. An operation that is not ok is info: it returns at
// infinity and an info cas may have found another value and done nothing.
var registerModel = porcupine.Model{
	Init: func() interface{} { return &zero },
	Step: func(state, input, _ interface{}) (bool, interface{}) {
		s, op := state.(*int64), input.(*rop)
		switch op.kind {
		case opRead:
			return op.value == *s, state
		case opWrite:
			return true, &op.value
		default:
			if *s == op.expect {
				return true, &op.value
			}
			return !op.ok(), state
		}
	},
	Equal: func(a, b interface{}) bool { return *a.(*int64) == *b.(*int64) },
	Hash:  func(s interface{}) uint64 { return uint64(*s.(*int64)) },
	DescribeOperation: func(input, _ interface{}) string {
		op := input.(*rop)
		var s string
		switch op.kind {
		case opRead:
			s = fmt.Sprintf("read() → %d", op.value)
		case opWrite:
			s = fmt.Sprintf("write(%d)", op.value)
		default:
			s = fmt.Sprintf("cas(%d → %d)", op.expect, op.value)
		}
		if !op.ok() {
			s += " (info)"
		}
		return s
	},
	DescribeState: func(s interface{}) string { return fmt.Sprintf("%d", *s.(*int64)) },
}

// maxEvidenceKeys bounds how many bad keys are searched again for evidence.
const maxEvidenceKeys = 10

// CheckLinearizable checks the register operations in ops with porcupine,
// one register per key. opts.Timeout bounds the whole search (0: none);
// when it runs out before every key is decided the verdict is Unknown, never
// Valid. Keys are searched in parallel (GOMAXPROCS at a time).
func CheckLinearizable(ctx context.Context, ops []results.Op, opts Options) Check {
	h := index(ops)
	return checkLinearizable(ctx, h, indexRegister(h), opts.Timeout, opts.MemoryBudget, scopeAll)
}

// Scopes of the linearizability check: which reads porcupine judges along
// with every write.
const (
	// scopePrimary: the reads the primary served (for their whole span).
	// Every model forbids these to be non-linearizable.
	scopePrimary = "primary"
	// scopeAll: the reads of every node, which only the linearizable
	// model requires to fit one order.
	scopeAll = "all"
)

// markPrimaryReads flags the register reads that the primary served from
// invocation to completion.
func markPrimaryReads(h *history, ri *regIndex, rt *roleTimeline) (standbyReads int) {
	for i := range ri.flat {
		r := &ri.flat[i]
		if r.kind != opRead || !r.ok() {
			continue
		}
		r.primary = rt.primaryThroughout(h.nodes[r.node], r.invT, r.compT)
		if !r.primary {
			standbyReads++
		}
	}
	for i := range ri.flat {
		switch r := &ri.flat[i]; {
		case !r.ok():
		case r.kind == opRead && r.primary && r.hasValue:
			ri.vals.observeP(r.value, r.compT)
		case r.kind == opCAS && r.hasExpect:
			ri.vals.observeP(r.expect, r.compT)
		}
	}
	return standbyReads
}

// keyOperations turns the history of register key k into porcupine
// operations, appended to buf[:0]: fail operations and reads without a
// result are dropped; reads outside the scope are dropped; info writes
// whose value no operation in the scope observed are left out (values are
// unique, so such a write can always be linearized last; "observed" counts
// the expected value of an info cas, whose own write may need it); the
// other info writes return when their value was first observed (they took
// effect before), the rest at infinity; when values repeat (repeats.go)
// none of this holds and every info write returns at infinity. It also
// returns the number left out.
func keyOperations(h *history, ri *regIndex, k int, scope string, buf []porcupine.Operation) ([]porcupine.Operation, int) {
	inf := h.end + 1
	out := buf[:0]
	pruned := 0
	ops := ri.byKey[k]
	inScope := func(op *rop) bool { return scope != scopePrimary || op.kind != opRead || op.primary }
	// The first observation of each value by an operation in the scope
	// (markPrimaryReads keeps the primary's apart).
	seenIn := func(v int64) (int64, bool) {
		vi := ri.vals.get(v)
		t := vi.seen
		if scope == scopePrimary {
			t = vi.seenP
		}
		return t, t != never
	}
	for i := range ops {
		op := &ops[i]
		if op.typ == tFail || !op.hasValue || (op.kind == opCAS && !op.hasExpect) || !inScope(op) {
			continue
		}
		ret := inf
		switch {
		case op.ok():
			ret = op.compT
		case op.kind == opRead:
			continue // a read without a result says nothing
		default:
			if ri.repeats {
				break // values repeat (repeats.go): nothing left out, returns at infinity
			}
			t, observed := seenIn(op.value)
			if !observed && !ri.vals.get(op.value).expected {
				pruned++
				continue
			}
			if observed {
				ret = t
			}
		}
		out = append(out, porcupine.Operation{ClientId: int(op.call), Input: op, Call: op.invT, Return: ret})
	}
	return out, pruned
}

// heapLive is the heap in live objects, in bytes (runtime/metrics, no
// stop-the-world).
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

func checkLinearizable(ctx context.Context, h *history, ri *regIndex, timeout time.Duration, budget uint64, scope string) Check {
	start := time.Now()
	chk := Check{Name: NameLinearizable}
	if scope == scopeAll {
		chk.Name = NameLinearizableAll
	}
	res := &LinearizableResult{Scope: scope}
	chk.Linearizable = res
	lim := newSearchLimits(ctx, start, timeout, budget)
	ks := searchKeys(h, ri, scope, lim)
	bad := ks.tally(res, ri.keys)
	explainBad(h, res, ri.keys, ks.failing, bad, lim)
	judgeLinearizable(&chk, res, lim, timeout)
	chk.ElapsedNS = time.Since(start).Nanoseconds()
	return chk
}

// searchLimits are what stops the linearizability search: the check's
// context, its time limit and its memory budget.
type searchLimits struct {
	ctx        context.Context
	deadline   time.Time // zero: none
	budget     uint64    // bytes of live heap; 0: none
	overBudget atomic.Bool
}

func newSearchLimits(ctx context.Context, start time.Time, timeout time.Duration, budget uint64) *searchLimits {
	l := &searchLimits{ctx: ctx, budget: budget}
	if timeout > 0 {
		l.deadline = start.Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (l.deadline.IsZero() || d.Before(l.deadline)) {
		l.deadline = d
	}
	return l
}

// remaining is the time left and whether there is any; with no deadline it
// is (0, true): porcupine then has no time limit.
func (l *searchLimits) remaining() (time.Duration, bool) {
	if l.ctx.Err() != nil {
		return 0, false
	}
	if l.deadline.IsZero() {
		return 0, true
	}
	r := time.Until(l.deadline)
	return r, r > 0
}

// overBudgetNow reports (and remembers) that the live heap has passed the
// budget.
func (l *searchLimits) overBudgetNow() bool {
	if l.budget == 0 {
		return false
	}
	if l.overBudget.Load() || heapLive() > l.budget {
		l.overBudget.Store(true)
		return true
	}
	return false
}

// keySearches are the per-key outcomes of the search, indexed as ri.keys.
type keySearches struct {
	verdicts []porcupine.CheckResult
	failing  []segmentResult // the failing part of each illegal key
	counts   []int           // operations searched
	prunedBy []int           // unobserved info writes left out
}

// searchKeys searches every key's history, GOMAXPROCS keys at a time; a
// key is Unknown when the limits ran out before or during its search.
func searchKeys(h *history, ri *regIndex, scope string, lim *searchLimits) keySearches {
	n := len(ri.keys)
	ks := keySearches{verdicts: make([]porcupine.CheckResult, n), failing: make([]segmentResult, n),
		counts: make([]int, n), prunedBy: make([]int, n)}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			var buf []porcupine.Operation // porcupine copies what it keeps
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				buf, ks.prunedBy[i] = keyOperations(h, ri, i, scope, buf)
				ks.counts[i] = len(buf)
				if len(buf) == 0 {
					ks.verdicts[i] = porcupine.Ok
					continue
				}
				if _, ok := lim.remaining(); !ok || lim.overBudgetNow() {
					ks.verdicts[i] = porcupine.Unknown
					continue
				}
				sr := searchSplit(buf, timedSearch(lim.remaining))
				ks.verdicts[i] = sr.verdict
				if sr.verdict == porcupine.Illegal {
					// The failing part, copied: buf is reused.
					sr.failing = append([]porcupine.Operation(nil), sr.failing...)
					ks.failing[i] = sr
				}
			}
		})
	}
	wg.Wait()
	return ks
}

// tally adds the searches up into res and returns the indexes of the keys
// with no legal order.
func (ks keySearches) tally(res *LinearizableResult, keys []string) []int {
	var bad []int
	for i, v := range ks.verdicts {
		res.Ops += ks.counts[i]
		res.Pruned += ks.prunedBy[i]
		if ks.counts[i] > 0 {
			res.Keys++
		}
		switch v {
		case porcupine.Illegal:
			bad = append(bad, i)
			res.BadKeys = append(res.BadKeys, keys[i])
		case porcupine.Unknown:
			res.TimedOut = append(res.TimedOut, keys[i])
		}
	}
	return bad
}

// explainBad names the operations that could not be placed on the first
// maxEvidenceKeys bad keys, while time remains, and draws the first.
func explainBad(h *history, res *LinearizableResult, keys []string, failing []segmentResult, bad []int, lim *searchLimits) {
	for n, i := range bad {
		if n >= maxEvidenceKeys {
			break
		}
		r, ok := lim.remaining()
		if !ok {
			break
		}
		ev, vis := explainKey(h, failing[i].failing, withInit(failing[i].init), r, n == 0)
		if len(ev) > 0 {
			if res.Evidence == nil {
				res.Evidence = map[string][]OpRef{}
			}
			res.Evidence[keys[i]] = ev
		}
		if n == 0 {
			res.Visualization = vis
		}
	}
}

// judgeLinearizable sets the check's verdict and summary from res: invalid
// when a key has no legal order, unknown when a key was left undecided
// (saying why: time, cancellation or memory), else valid.
func judgeLinearizable(chk *Check, res *LinearizableResult, lim *searchLimits, timeout time.Duration) {
	switch {
	case len(res.BadKeys) > 0:
		chk.Verdict = Invalid
		chk.Summary = fmt.Sprintf("not linearizable: %d of %d keys have no legal order (%s); %d operations checked, %d unobserved info writes left out",
			len(res.BadKeys), res.Keys, listShort(res.BadKeys, 5), res.Ops, res.Pruned)
		if len(res.TimedOut) > 0 {
			chk.Summary += fmt.Sprintf("; %d keys undecided within the time limit", len(res.TimedOut))
		}
	case len(res.TimedOut) > 0:
		chk.Verdict = Unknown
		chk.Error = fmt.Sprintf("the search did not finish within the time limit (%v) for %d of %d keys (%s)",
			timeout, len(res.TimedOut), res.Keys, listShort(res.TimedOut, 5))
		if lim.ctx.Err() != nil {
			chk.Error = fmt.Sprintf("stopped before deciding %d of %d keys: %v", len(res.TimedOut), res.Keys, lim.ctx.Err())
		}
		if lim.overBudget.Load() {
			chk.Error = fmt.Sprintf("the memory budget (%d MiB) ran out: %d of %d keys undecided (%s); the others were linearizable",
				lim.budget>>20, len(res.TimedOut), res.Keys, listShort(res.TimedOut, 5))
		}
		chk.Summary = "unknown: " + chk.Error
	case res.Keys == 0:
		chk.Verdict = Valid
		chk.Summary = "no register operation to check"
	default:
		chk.Verdict = Valid
		chk.Summary = fmt.Sprintf("linearizable: %d operations on %d keys (%d unobserved info writes left out)", res.Ops, res.Keys, res.Pruned)
	}
}

// explainKey searches one bad key again with porcupine's partial
// linearizations to name the operations that could not be placed, and, if
// visualize, renders porcupine's HTML with the nemesis windows as
// annotations.
func explainKey(h *history, ops []porcupine.Operation, model porcupine.Model, timeout time.Duration, visualize bool) ([]OpRef, string) {
	clients := map[int32]int{}
	for i := range ops {
		c := &h.clients[ops[i].Input.(*rop).call]
		id, ok := clients[c.proc]
		if !ok {
			id = len(clients)
			clients[c.proc] = id
		}
		ops[i].ClientId = id // porcupine's visualization wants dense ids
		ops[i].Metadata = fmt.Sprintf("#%d process %d on %s", c.inv, c.proc, h.nodeName(c))
	}
	verdict, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	if verdict != porcupine.Illegal {
		return nil, ""
	}
	var evidence []OpRef
	partials := info.PartialLinearizations()
	if len(partials) == 1 {
		var longest []int
		for _, p := range partials[0] {
			if len(p) > len(longest) {
				longest = p
			}
		}
		placed := make([]bool, len(ops))
		for _, id := range longest {
			placed[id] = true
		}
		var unplaced []int
		for id := range ops {
			if !placed[id] {
				unplaced = append(unplaced, id)
			}
		}
		sort.SliceStable(unplaced, func(a, b int) bool { return ops[unplaced[a]].Return < ops[unplaced[b]].Return })
		if len(longest) > 0 {
			// The last placed operation: the state the frontier could not
			// follow.
			evidence = append(evidence, h.ref(h.clients[ops[longest[len(longest)-1]].Input.(*rop).call]))
		}
		for _, id := range unplaced[:min(len(unplaced), 5)] {
			evidence = append(evidence, h.ref(h.clients[ops[id].Input.(*rop).call]))
		}
	}
	if !visualize {
		return evidence, ""
	}
	info.AddAnnotations(h.annotations())
	var buf bytes.Buffer
	if err := porcupine.Visualize(model, info, &buf); err != nil {
		return evidence, ""
	}
	return evidence, buf.String()
}

// annotations are the nemesis windows and steps for porcupine's
// visualization.
func (h *history) annotations() []porcupine.Annotation {
	var out []porcupine.Annotation
	for _, w := range h.windows {
		end := w.stop
		if end < 0 {
			end = h.end
		}
		out = append(out, porcupine.Annotation{
			Tag:             "nemesis",
			Start:           w.start,
			End:             end,
			Description:     strings.TrimSpace(w.kind + " " + strings.Join(w.targets, ",")),
			Details:         fmt.Sprintf("fault %d: %s of %v", w.id, w.kind, w.targets),
			BackgroundColor: "#f4cccc",
		})
	}
	for c := range h.nemesisSteps() {
		f := h.stepOp(c).Fault
		if f == nil || f.Phase != results.PhaseStep {
			continue
		}
		d := f.Kind
		if f.Primary != "" {
			d += " → " + f.Primary
		}
		t := h.stepEnd(c)
		out = append(out, porcupine.Annotation{
			Tag: "nemesis", Start: t, End: t, Description: d,
			Details: fmt.Sprintf("fault %d step %s %s", f.ID, f.Kind, f.Detail),
		})
	}
	return out
}

// listShort joins the first n strings and says how many more there are.
func listShort(s []string, n int) string {
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:n], ", "), len(s)-n)
}
