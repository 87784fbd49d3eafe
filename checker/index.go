package checker

import (
	"iter"
	"slices"
	"sort"
	"strings"

	"github.com/strongcheck/strongcheck/results"
)

// Compact codes of a client operation's completion type, function and
// workload.
const (
	tInfo uint8 = iota
	tOK
	tFail
)

func typeCode(t results.Type) uint8 {
	switch t {
	case results.OK:
		return tOK
	case results.Fail:
		return tFail
	}
	return tInfo
}

var typeNames = [...]results.Type{tInfo: results.Info, tOK: results.OK, tFail: results.Fail}

const (
	fOther uint8 = iota
	fRead
	fWrite
	fCAS
	fAdd
	fTransfer
)

var fNames = [...]string{fRead: results.FRead, fWrite: results.FWrite, fCAS: results.FCAS, fAdd: results.FAdd, fTransfer: results.FTransfer}

func fCode(f string) uint8 {
	switch f {
	case results.FRead:
		return fRead
	case results.FWrite:
		return fWrite
	case results.FCAS:
		return fCAS
	case results.FAdd:
		return fAdd
	case results.FTransfer:
		return fTransfer
	}
	return fOther
}

const (
	wlOther uint8 = iota
	wlRegister
	wlSet
	wlBank
)

func wlCode(w string) uint8 {
	switch w {
	case results.WorkloadRegister:
		return wlRegister
	case results.WorkloadSet:
		return wlSet
	case results.WorkloadBank:
		return wlBank
	}
	return wlOther
}

// Flags of a call.
const (
	flagWrite     uint8 = 1 << iota // a write, cas, add or transfer
	flagWarned                      // acknowledged with the sync-wait warning
	flagCancelled                   // info after a timeout: its wait may have been cancelled
	flagValue                       // value is set
	flagExpect                      // expect is set
)

// call is one client operation in a compact form: what the checkers judge
// and what evidence needs, without the history's lines, so that a history
// of tens of millions of lines is judged in memory proportional to its
// operations at some 70 bytes each.
type call struct {
	invT, compT   int64 // times of the invoke and the completion (compT -1 when none)
	value, expect int64 // the value written, added, or read; a transfer's id; a cas's expected value
	inv, comp     int32 // history index of the invoke and the completion (-1 when none)
	proc          int32
	key           int32 // register key (history.regKeys), -1 otherwise
	side          int32 // set read (history.setReads), bank read (history.bankReads) or transfer (history.transfers); -1
	errI, warnI   int32 // index into history.texts of the completion's error and warning; -1
	typ           uint8 // tOK, tFail or tInfo (tInfo when it never completed)
	f, wl, node   uint8
	flags         uint8
}

func (c *call) has(f uint8) bool { return c.flags&f != 0 }
func (c *call) ok() bool         { return c.typ == tOK }

// write, warned and cancelled are the flags by name.
func (c *call) write() bool     { return c.has(flagWrite) }
func (c *call) warned() bool    { return c.has(flagWarned) }
func (c *call) cancelled() bool { return c.has(flagCancelled) }

// step is one nemesis or harness operation, kept whole: they are few.
// inv and comp index history.special (-1: none); a completion without an
// invoke (the harness's init and topology records) has inv == comp.
type step struct {
	inv, comp   int
	invT, compT int64
	typ         results.Type
}

// setReadRec is one set read, over [lo, hi]: every element there but
// missing was present, and extra were present outside it.
type setReadRec struct {
	lo, hi         int64
	missing, extra []int64
}

// maybeCancelled reports an info completion after a timeout or a cancel:
// the harness sends a cancel request when an operation's time runs out,
// which ends a commit's wait for the standbys and makes it visible on the
// primary.
func maybeCancelled(op *results.Op) bool {
	if op.Type != results.Info || op.Error == "" {
		return false
	}
	e := strings.ToLower(op.Error)
	return strings.Contains(e, "timeout") || strings.Contains(e, "deadline") || strings.Contains(e, "cancel")
}

// rop is a register operation in a compact form, so that the register
// checkers walk dense memory.
type rop struct {
	invT, compT   int64 // compT -1 when the operation never completed
	value, expect int64 // write/cas: value written; read: value read; cas: expected value
	call          int32 // index into history.clients
	key           int32 // index into history.regKeys
	kind          uint8 // opRead, opWrite, opCAS
	typ           uint8 // tOK, tFail, tInfo
	node          uint8 // index into history.nodes of the completion's node
	warned        bool  // acknowledged with the sync-wait warning
	cancelled     bool  // info after a timeout (see maybeCancelled)
	primary       bool  // a read the primary served for its whole span (markPrimaryReads)
	hasValue      bool
	hasExpect     bool
}

func (r *rop) ok() bool { return r.typ == tOK }

// window is one fault window of the nemesis.
type window struct {
	id      int
	kind    string
	targets []string
	start   int64 // time of the start op's invoke
	stop    int64 // time of the stop op's completion; -1 if never closed
	// recs are the lines (history.special) of this window's records that
	// carry node or replication state, in history order.
	recs []int
}

// history is a paired, compact view of a results history, built once in
// one pass over its lines and shared by the checkers.
type history struct {
	clients []call // client operations, in invoke order
	steps   []step // nemesis and harness operations, in invoke order
	special []results.Op
	nemesis []int // indices into steps
	harness []int // indices into steps
	windows []window
	starts  []int64 // windows[i].start, sorted ascending (windows are kept in that order)
	end     int64   // the latest time in the history
	lines   int     // history lines read
	rops    []rop   // register operations, in invoke order
	regKeys []string
	keyIdx  map[string]int32
	nodes   []string // node names (call.node, rop.node)
	texts   []string // error and warning texts, each once
	textOf  map[string]int32
	// wcomp and winv are the completion and invoke times of the
	// acknowledged client writes, in completion order.
	wcomp, winv []int64
	setReads    []setReadRec
	bankReads   [][]int64
	transfers   []results.Transfer
	// workloadNames are the client workloads seen, by name.
	workloadNames map[string]bool
	// maxAdd is the greatest set element any add invoked so far.
	maxAdd int64
	rt     *roleTimeline
	// appendOps are the list-append workload's client lines, whole.
	appendOps []results.Op
}

// openKey identifies an open non-client operation, so that a completion of
// the nemesis or the harness finds its invoke even if several are open.
type openKey struct {
	p      results.Process
	f, wl  string
	key    string
	faultI int
	phase  string
}

func nonClientKey(op *results.Op) openKey {
	k := openKey{p: op.Process, f: op.F, wl: op.Workload, key: op.Key}
	if op.Fault != nil {
		k.faultI, k.phase = op.Fault.ID, op.Fault.Phase
	}
	return k
}

// index pairs the invokes and completions of ops.
func index(ops []results.Op) *history {
	return indexSeq(func(yield func(*results.Op) bool) {
		for i := range ops {
			if !yield(&ops[i]) {
				return
			}
		}
	})
}

// indexer is the state of one pass over a history.
type indexer struct {
	h       *history
	open    []int32 // by client process: index into h.clients, -1 when none
	openRop []int32 // by client process: index into h.rops, -1 when none
	other   map[openKey][]int
}

// indexSeq pairs invokes with completions, compacts client operations,
// keeps nemesis and harness lines whole, and collects the fault windows.
// The lines are read once and not kept.
func indexSeq(seq iter.Seq[*results.Op]) *history {
	x := &indexer{h: &history{textOf: map[string]int32{}, keyIdx: map[string]int32{}, workloadNames: map[string]bool{}},
		other: map[openKey][]int{}}
	for op := range seq {
		x.h.lines++
		if op.Time > x.h.end {
			x.h.end = op.Time
		}
		if op.Process.IsClient() {
			x.client(op)
		} else {
			x.special(op)
		}
	}
	x.h.collectWindows()
	return x.h
}

// client adds one client line.
func (x *indexer) client(op *results.Op) {
	h := x.h
	if op.F == results.FTxn {
		h.appendOps = append(h.appendOps, *op) // whole, for the list-append check (listappend.go)
	}
	p := int(op.Process)
	for p >= len(x.open) {
		x.open, x.openRop = append(x.open, -1), append(x.openRop, -1)
	}
	if op.Workload != "" {
		h.workloadNames[op.Workload] = true
	}
	if op.Type == results.Invoke {
		// An invoke while another is open means the earlier one never
		// completed: it stays without a completion.
		c := h.newCall(op)
		h.clients = append(h.clients, c)
		x.open[p], x.openRop[p] = int32(len(h.clients)-1), -1
		if r, ok := startRop(op); ok && c.wl == wlRegister {
			r.call, r.key = int32(len(h.clients)-1), c.key
			h.rops = append(h.rops, r)
			x.openRop[p] = int32(len(h.rops) - 1)
		}
		return
	}
	ci := x.open[p]
	if ci < 0 {
		// A completion without its invoke: recorded as a call of its own.
		c := h.newCall(op)
		c.invT = op.Time - op.Latency
		h.clients = append(h.clients, c)
		ci = int32(len(h.clients) - 1)
		if r, ok := startRop(op); ok && c.wl == wlRegister {
			r.invT, r.call, r.key = c.invT, ci, c.key
			h.rops = append(h.rops, r)
			x.openRop[p] = int32(len(h.rops) - 1)
		}
	}
	c := &h.clients[ci]
	h.complete(c, op)
	if c.typ == tOK && c.write() {
		h.wcomp, h.winv = append(h.wcomp, c.compT), append(h.winv, c.invT)
	}
	if r := x.openRop[p]; r >= 0 {
		h.finish(&h.rops[r], c)
	}
	x.open[p], x.openRop[p] = -1, -1
}

// special adds one nemesis or harness line.
func (x *indexer) special(op *results.Op) {
	h := x.h
	h.special = append(h.special, *op)
	i := len(h.special) - 1
	if op.Workload != "" && op.Workload != results.WorkloadNemesis {
		h.workloadNames[op.Workload] = true
	}
	list := &h.harness
	if op.Process == results.NemesisProcess {
		list = &h.nemesis
	}
	k := nonClientKey(op)
	if op.Type == results.Invoke {
		h.steps = append(h.steps, step{inv: i, comp: -1, invT: op.Time, compT: -1, typ: results.Info})
		*list = append(*list, len(h.steps)-1)
		x.other[k] = append(x.other[k], len(h.steps)-1)
		return
	}
	if stack := x.other[k]; len(stack) > 0 {
		// Oldest open invoke of the same kind, preferring one on the
		// same node (final reads of several nodes may overlap).
		j := 0
		for s, si := range stack {
			if n := h.special[h.steps[si].inv].Node; n != "" && n == op.Node {
				j = s
				break
			}
		}
		st := &h.steps[stack[j]]
		st.comp, st.compT, st.typ = i, op.Time, op.Type
		x.other[k] = append(stack[:j:j], stack[j+1:]...)
		return
	}
	h.steps = append(h.steps, step{inv: i, comp: i, invT: op.Time - op.Latency, compT: op.Time, typ: op.Type})
	*list = append(*list, len(h.steps)-1)
}

// newCall is the invoke side of a client call.
func (h *history) newCall(op *results.Op) call {
	c := call{invT: op.Time, compT: -1, inv: int32(op.Index), comp: -1, proc: int32(op.Process), key: -1, side: -1,
		errI: -1, warnI: -1, typ: tInfo, f: fCode(op.F), wl: wlCode(op.Workload), node: h.nodeIndex(op.Node)}
	if isWrite(op.F) || op.F == results.FTxn && txnWrites(op.Txn) {
		c.flags |= flagWrite
	}
	if c.wl == wlRegister {
		c.key = h.regKey(op.Key)
	}
	switch {
	case op.Transfer != nil:
		c.value, c.flags = op.Transfer.ID, c.flags|flagValue
		h.transfers = append(h.transfers, *op.Transfer)
		c.side = int32(len(h.transfers) - 1)
	case op.Value != nil && op.Type == results.Invoke:
		c.value, c.flags = *op.Value, c.flags|flagValue
	}
	if op.Expect != nil {
		c.expect, c.flags = *op.Expect, c.flags|flagExpect
	}
	if c.wl == wlSet && c.f == fAdd && c.has(flagValue) {
		h.maxAdd = max(h.maxAdd, c.value)
	}
	return c
}

// complete fills the completion side of a client call.
func (h *history) complete(c *call, op *results.Op) {
	c.comp, c.compT, c.typ = int32(op.Index), op.Time, typeCode(op.Type)
	if op.Node != "" {
		c.node = h.nodeIndex(op.Node)
	}
	if op.Type == results.OK && op.Warning != "" && ackedWithWarning(op) {
		c.flags |= flagWarned
	}
	if maybeCancelled(op) {
		c.flags |= flagCancelled
	}
	if op.Warning != "" {
		c.warnI = h.text(op.Warning)
	}
	if op.Error != "" && (c.write() || op.Type == results.Info) {
		c.errI = h.text(op.Error)
	}
	if op.Value != nil && (c.f == fRead || !c.has(flagValue)) {
		c.value, c.flags = *op.Value, c.flags|flagValue
	}
	if op.Type != results.OK || c.f != fRead {
		return
	}
	switch c.wl {
	case wlSet:
		h.setReads = append(h.setReads, h.setReadOf(op))
		c.side = int32(len(h.setReads) - 1)
	case wlBank:
		h.bankReads = append(h.bankReads, op.Values)
		c.side = int32(len(h.bankReads) - 1)
	}
}

// setReadOf normalizes a set read: a range read (schema 2) as it is, a
// whole read (schema 1) as the range of every element added so far.
func (h *history) setReadOf(op *results.Op) setReadRec {
	if op.Lo != 0 || op.Hi != 0 {
		return setReadRec{lo: op.Lo, hi: op.Hi, missing: op.Missing, extra: op.Values}
	}
	return wholeRead(op.Values, max(h.maxAdd, slices.Max(append([]int64{0}, op.Values...))))
}

// wholeRead is a read of every element, as the range [1, hi].
func wholeRead(values []int64, hi int64) setReadRec {
	vals := values
	if !slices.IsSorted(vals) {
		vals = slices.Sorted(slices.Values(vals))
	}
	r := setReadRec{lo: 1, hi: hi}
	j := 0
	for e := int64(1); e <= hi; e++ {
		for j < len(vals) && vals[j] < e {
			if vals[j] < 1 {
				r.extra = append(r.extra, vals[j])
			}
			j++
		}
		if j < len(vals) && vals[j] == e {
			continue
		}
		r.missing = append(r.missing, e)
	}
	for ; j < len(vals); j++ {
		if vals[j] > hi || vals[j] < 1 {
			r.extra = append(r.extra, vals[j])
		}
	}
	return r
}

// present reports whether a set read saw element e (inside or outside its
// range).
func (r *setReadRec) present(e int64) bool {
	if e >= r.lo && e <= r.hi {
		_, found := slices.BinarySearch(r.missing, e)
		return !found
	}
	_, found := slices.BinarySearch(r.extra, e)
	return found
}

// text is the index of s in h.texts.
func (h *history) text(s string) int32 {
	if i, ok := h.textOf[s]; ok {
		return i
	}
	h.texts = append(h.texts, s)
	i := int32(len(h.texts) - 1)
	h.textOf[s] = i
	return i
}

func (h *history) textAt(i int32) string {
	if i < 0 {
		return ""
	}
	return h.texts[i]
}

// startRop fills the invoke side of a register operation; ok is false for
// functions the register model does not know.
func startRop(op *results.Op) (rop, bool) {
	r := rop{invT: op.Time, compT: -1, typ: tInfo}
	switch op.F {
	case results.FRead:
		r.kind = opRead
	case results.FWrite:
		r.kind = opWrite
	case results.FCAS:
		r.kind = opCAS
	default:
		return r, false
	}
	if op.Value != nil && r.kind != opRead && op.Type == results.Invoke {
		r.value, r.hasValue = *op.Value, true
	}
	if op.Expect != nil {
		r.expect, r.hasExpect = *op.Expect, true
	}
	return r, true
}

func (h *history) finish(r *rop, c *call) {
	r.compT, r.typ, r.node = c.compT, c.typ, c.node
	r.warned, r.cancelled = c.warned(), c.cancelled()
	if c.has(flagValue) && (r.kind == opRead || !r.hasValue) {
		r.value, r.hasValue = c.value, true
	}
	if c.has(flagExpect) && !r.hasExpect {
		r.expect, r.hasExpect = c.expect, true
	}
}

// nodeIndex is the index of node in h.nodes (a handful of names).
func (h *history) nodeIndex(node string) uint8 {
	for i, n := range h.nodes {
		if n == node {
			return uint8(i)
		}
	}
	if len(h.nodes) == 255 {
		return 255 // more nodes than a cluster has: lumped together
	}
	h.nodes = append(h.nodes, node)
	return uint8(len(h.nodes) - 1)
}

// nodeName is a call's node.
func (h *history) nodeName(c *call) string { return h.nodes[c.node] }

func (h *history) regKey(key string) int32 {
	k, ok := h.keyIdx[key]
	if !ok {
		k = int32(len(h.regKeys))
		h.keyIdx[key] = k
		h.regKeys = append(h.regKeys, key)
	}
	return k
}

func (h *history) collectWindows() {
	byID := map[int]int{}
	for _, si := range h.nemesis {
		s := h.steps[si]
		inv := &h.special[s.inv]
		f := inv.Fault
		if f == nil && s.comp >= 0 {
			f = h.special[s.comp].Fault
		}
		if f == nil {
			continue
		}
		switch f.Phase {
		case results.PhaseStart:
			kind := f.Kind
			if kind == "" {
				kind = inv.F
			}
			h.windows = append(h.windows, window{id: f.ID, kind: kind, targets: f.Targets, start: inv.Time, stop: -1})
			byID[f.ID] = len(h.windows) - 1
		case results.PhaseStop:
			if w, ok := byID[f.ID]; ok {
				h.windows[w].stop = h.stepEnd(s)
			}
		}
		if w, ok := byID[f.ID]; ok {
			for _, i := range []int{s.inv, s.comp} {
				if i >= 0 && h.special[i].Fault != nil && (len(h.special[i].Fault.Nodes) > 0 || len(h.special[i].Fault.Replication) > 0) {
					h.windows[w].recs = append(h.windows[w].recs, i)
				}
			}
		}
	}
	sort.SliceStable(h.windows, func(a, b int) bool { return h.windows[a].start < h.windows[b].start })
	h.starts = make([]int64, len(h.windows))
	for i, w := range h.windows {
		h.starts[i] = w.start
	}
}

// stepEnd is the completion time of s, or its invoke time when it has none.
func (h *history) stepEnd(s step) int64 {
	if s.comp < 0 {
		return s.invT
	}
	return s.compT
}

// stepOp returns a step's completion line, or its invoke when it has none.
func (h *history) stepOp(s step) *results.Op {
	if s.comp < 0 {
		return &h.special[s.inv]
	}
	return &h.special[s.comp]
}

// nemesisSteps and harnessSteps iterate over the steps of each kind.
func (h *history) nemesisSteps() iter.Seq[step] { return h.stepsOf(h.nemesis) }
func (h *history) harnessSteps() iter.Seq[step] { return h.stepsOf(h.harness) }

func (h *history) stepsOf(list []int) iter.Seq[step] {
	return func(yield func(step) bool) {
		for _, i := range list {
			if !yield(h.steps[i]) {
				return
			}
		}
	}
}

// end of a call: its completion time, or its invoke when it never completed.
func (c *call) end() int64 {
	if c.comp < 0 {
		return c.invT
	}
	return c.compT
}

// latestWindow is the index of the latest fault window that started at or
// before t, or -1.
func (h *history) latestWindow(t int64) int {
	return sort.Search(len(h.starts), func(i int) bool { return h.starts[i] > t }) - 1
}

// ref builds the evidence for one client operation.
func (h *history) ref(c call) OpRef {
	r := OpRef{Invoke: int64(c.inv), Complete: int64(c.comp), Process: int(c.proc), F: fName(c.f), Node: h.nodeName(&c),
		Type: string(typeNames[c.typ]), InvokeNS: c.invT, CompleteNS: c.compT, Warning: h.textAt(c.warnI), SinceFaultNS: -1}
	if c.key >= 0 {
		r.Key = h.regKeys[c.key]
	}
	if c.has(flagValue) {
		r.Value = results.Int(c.value)
	}
	if c.comp < 0 {
		r.Type, r.CompleteNS = string(results.Info), -1
	}
	if c.inv == c.comp {
		r.Invoke = -1
	}
	h.refFault(&r)
	if h.rt != nil && r.Node != "" {
		r.Role = h.rt.roleAt(r.Node, r.InvokeNS)
	}
	return r
}

// fName is a call's function by name ("" for one the checkers do not know).
func fName(f uint8) string {
	if int(f) < len(fNames) {
		return fNames[f]
	}
	return ""
}

// refStep builds the evidence for one harness or nemesis step.
func (h *history) refStep(s step) OpRef {
	inv := &h.special[s.inv]
	r := OpRef{Invoke: inv.Index, Complete: -1, Process: int(inv.Process), F: inv.F, Key: inv.Key, Value: inv.Value,
		Node: inv.Node, Type: string(results.Info), InvokeNS: s.invT, CompleteNS: -1, SinceFaultNS: -1}
	if s.comp >= 0 {
		comp := &h.special[s.comp]
		r.Complete, r.CompleteNS, r.Type, r.Warning = comp.Index, comp.Time, string(comp.Type), comp.Warning
		if comp.Node != "" {
			r.Node = comp.Node
		}
		if comp.Value != nil {
			r.Value = comp.Value
		}
		if s.comp == s.inv {
			r.Invoke = -1
		}
	}
	h.refFault(&r)
	return r
}

// refFault sets the fault an operation was invoked under.
func (h *history) refFault(r *OpRef) {
	if w := h.latestWindow(r.InvokeNS); w >= 0 {
		r.SinceFaultNS = r.InvokeNS - h.windows[w].start
		r.FaultID, r.FaultKind = h.windows[w].id, h.windows[w].kind
	}
}

// isWrite reports whether f changes state in its workload.
func isWrite(f string) bool {
	switch f {
	case results.FWrite, results.FCAS, results.FAdd, results.FTransfer:
		return true
	}
	return false
}

// txnWrites reports whether a list-append transaction appends: it then
// goes to the primary and counts as a write (availability's write gaps).
func txnWrites(txn []results.Mop) bool {
	for _, m := range txn {
		if m.F == results.MopAppend {
			return true
		}
	}
	return false
}

// nodeNames lists the cluster's nodes: those the nemesis recorded states
// of, else every node an operation names, sorted.
func (h *history) nodeNames() []string {
	seen := map[string]bool{}
	for i := range h.special {
		if f := h.special[i].Fault; f != nil {
			for _, n := range f.Nodes {
				seen[n.Node] = true
			}
		}
	}
	if len(seen) == 0 {
		for _, n := range h.nodes {
			if n != "" {
				seen[n] = true
			}
		}
		for i := range h.special {
			if n := h.special[i].Node; n != "" {
				seen[n] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
