package checker

import (
	"sort"
	"strings"

	"github.com/strongcheck/strongcheck/results"
)

// call is one operation: the index of its invoke entry and of its completion
// (-1 when the history ended before it completed). A completion that matches
// no open invoke (the harness's init entry) is a call with inv == comp.
type call struct {
	inv, comp   int
	invT, compT int64        // times of the invoke and the completion (compT -1 when none)
	typ         results.Type // the completion's type; Info when there is none
	write       bool         // a write, cas, add or transfer
	warned      bool         // acknowledged with the sync-wait warning
	cancelled   bool         // info after a timeout: its wait may have been cancelled
}

func newCall(i int, op *results.Op) call {
	return call{inv: i, comp: -1, invT: op.Time, compT: -1, typ: results.Info, write: isWrite(op.F)}
}

func (c *call) complete(i int, op *results.Op) {
	c.comp, c.compT, c.typ = i, op.Time, op.Type
	c.warned = op.Warning != "" && op.Type == results.OK && ackedWithWarning(op)
	c.cancelled = maybeCancelled(op)
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

// orphan is a completion without an invoke (the harness's init entry).
func orphan(i int, op *results.Op) call {
	c := newCall(i, op)
	c.invT = op.Time - op.Latency
	c.complete(i, op)
	return c
}

// rop is a register operation in a compact form, so that the register
// checkers walk dense memory instead of the history.
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

// Compact completion types of a rop.
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

func (r *rop) ok() bool { return r.typ == tOK }

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
	if op.Value != nil && r.kind != opRead {
		r.value, r.hasValue = *op.Value, true
	}
	if op.Expect != nil {
		r.expect, r.hasExpect = *op.Expect, true
	}
	return r, true
}

func (h *history) finish(r *rop, op *results.Op) {
	r.compT, r.typ = op.Time, typeCode(op.Type)
	r.node = h.nodeIndex(op.Node)
	r.warned = op.Warning != "" && op.Type == results.OK && ackedWithWarning(op)
	r.cancelled = maybeCancelled(op)
	if op.Value != nil && (r.kind == opRead || !r.hasValue) {
		r.value, r.hasValue = *op.Value, true
	}
}

// window is one fault window of the nemesis.
type window struct {
	id      int
	kind    string
	targets []string
	start   int64 // time of the start op's invoke
	stop    int64 // time of the stop op's completion; -1 if never closed
	// recs are the nemesis entries of this window that carry node or
	// replication state, in history order.
	recs []int
}

// history is a paired view of a results history, built once in linear time
// and shared by the checkers.
type history struct {
	ops     []results.Op
	clients []call // client operations, in invoke order
	nemesis []call // nemesis operations, in invoke order
	harness []call // harness operations (init, final reads), in invoke order
	windows []window
	starts  []int64  // windows[i].start, sorted ascending (windows are kept in that order)
	end     int64    // the latest time in the history
	rops    []rop    // register operations, in invoke order
	regKeys []string // register keys, in order of first appearance
	nodes   []string // nodes named by register completions (rop.node)
	// wcomp and winv are the completion and invoke times of the
	// acknowledged client writes, in completion order.
	wcomp, winv []int64
	// rt is who was primary when, once roleTimeline built it.
	rt *roleTimeline
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

// index pairs invokes with completions and collects the fault windows.
func index(ops []results.Op) *history {
	h := &history{ops: ops, clients: make([]call, 0, len(ops)/2+1)}
	var open []int    // by client process: index into h.clients, -1 when none
	var openRop []int // by client process: index into h.rops, -1 when none
	keyOf := map[string]int32{}
	other := map[openKey][]int{}
	for i := range ops {
		op := &ops[i]
		if op.Time > h.end {
			h.end = op.Time
		}
		if op.Process.IsClient() {
			p := int(op.Process)
			for p >= len(open) {
				open, openRop = append(open, -1), append(openRop, -1)
			}
			reg := isRegister(op)
			if op.Type == results.Invoke {
				// An invoke while another is open means the earlier one
				// never completed: it stays without a completion.
				h.clients = append(h.clients, newCall(i, op))
				open[p], openRop[p] = len(h.clients)-1, -1
				if r, ok := startRop(op); reg && ok {
					r.call, r.key = int32(len(h.clients)-1), h.regKey(keyOf, op.Key)
					h.rops = append(h.rops, r)
					openRop[p] = len(h.rops) - 1
				}
				continue
			}
			if c := open[p]; c >= 0 {
				h.clients[c].complete(i, op)
				if op.Type == results.OK && h.clients[c].write {
					h.wcomp, h.winv = append(h.wcomp, op.Time), append(h.winv, h.clients[c].invT)
				}
				if r := openRop[p]; r >= 0 {
					h.finish(&h.rops[r], op)
				}
				open[p], openRop[p] = -1, -1
			} else {
				h.clients = append(h.clients, orphan(i, op))
				if r, ok := startRop(op); reg && ok {
					r.invT = h.clients[len(h.clients)-1].invT
					r.call, r.key = int32(len(h.clients)-1), h.regKey(keyOf, op.Key)
					h.finish(&r, op)
					h.rops = append(h.rops, r)
				}
			}
			continue
		}
		list := &h.harness
		if op.Process == results.NemesisProcess {
			list = &h.nemesis
		}
		k := nonClientKey(op)
		if op.Type == results.Invoke {
			*list = append(*list, newCall(i, op))
			other[k] = append(other[k], len(*list)-1)
			continue
		}
		if stack := other[k]; len(stack) > 0 {
			// Oldest open invoke of the same kind, preferring one on the
			// same node (final reads of several nodes may overlap).
			j := 0
			for s, c := range stack {
				if n := h.ops[(*list)[c].inv].Node; n != "" && n == op.Node {
					j = s
					break
				}
			}
			(*list)[stack[j]].complete(i, op)
			other[k] = append(stack[:j:j], stack[j+1:]...)
		} else {
			*list = append(*list, orphan(i, op))
		}
	}
	h.collectWindows()
	return h
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

func (h *history) regKey(keyOf map[string]int32, key string) int32 {
	k, ok := keyOf[key]
	if !ok {
		k = int32(len(h.regKeys))
		keyOf[key] = k
		h.regKeys = append(h.regKeys, key)
	}
	return k
}

func (h *history) collectWindows() {
	byID := map[int]int{}
	for _, c := range h.nemesis {
		inv := &h.ops[c.inv]
		f := inv.Fault
		if f == nil && c.comp >= 0 {
			f = h.ops[c.comp].Fault
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
				h.windows[w].stop = h.opEnd(c)
			}
		}
		if w, ok := byID[f.ID]; ok {
			for _, i := range []int{c.inv, c.comp} {
				if i >= 0 && h.ops[i].Fault != nil && (len(h.ops[i].Fault.Nodes) > 0 || len(h.ops[i].Fault.Replication) > 0) {
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

// opEnd is the completion time of c, or its invoke time when it has none.
func (h *history) opEnd(c call) int64 {
	if c.comp < 0 {
		return c.invT
	}
	return c.compT
}

// completion returns the completion entry, or the invoke when there is none.
func (h *history) completion(c call) *results.Op {
	if c.comp < 0 {
		return &h.ops[c.inv]
	}
	return &h.ops[c.comp]
}

// latestWindow is the index of the latest fault window that started at or
// before t, or -1.
func (h *history) latestWindow(t int64) int {
	return sort.Search(len(h.starts), func(i int) bool { return h.starts[i] > t }) - 1
}

// ref builds the evidence for one operation.
func (h *history) ref(c call) OpRef {
	inv := &h.ops[c.inv]
	r := OpRef{
		Invoke:       inv.Index,
		Complete:     -1,
		Process:      int(inv.Process),
		F:            inv.F,
		Key:          inv.Key,
		Value:        inv.Value,
		Node:         inv.Node,
		Type:         string(results.Info),
		InvokeNS:     inv.Time,
		CompleteNS:   -1,
		Warning:      inv.Warning,
		SinceFaultNS: -1,
	}
	if inv.Transfer != nil && r.Value == nil {
		r.Value = results.Int(inv.Transfer.ID)
	}
	if c.comp >= 0 {
		comp := &h.ops[c.comp]
		r.Complete, r.CompleteNS, r.Type = comp.Index, comp.Time, string(comp.Type)
		if comp.Node != "" {
			r.Node = comp.Node
		}
		if comp.Warning != "" {
			r.Warning = comp.Warning
		}
		if inv.F == results.FRead || r.Value == nil {
			if comp.Value != nil {
				r.Value = comp.Value
			}
		}
		if c.comp == c.inv {
			r.Invoke = -1
			if comp.Latency > 0 {
				r.InvokeNS = comp.Time - comp.Latency
			}
		}
	}
	if w := h.latestWindow(r.InvokeNS); w >= 0 {
		r.SinceFaultNS = r.InvokeNS - h.windows[w].start
		r.FaultID, r.FaultKind = h.windows[w].id, h.windows[w].kind
	}
	if h.rt != nil && r.Node != "" && inv.Process.IsClient() {
		r.Role = h.rt.roleAt(r.Node, r.InvokeNS)
	}
	return r
}

// isWrite reports whether f changes state in its workload.
func isWrite(f string) bool {
	switch f {
	case results.FWrite, results.FCAS, results.FAdd, results.FTransfer:
		return true
	}
	return false
}

// nodeNames lists the cluster's nodes: those the nemesis recorded states
// of, else every node an operation names, sorted.
func (h *history) nodeNames() []string {
	seen := map[string]bool{}
	for _, c := range append(append([]call(nil), h.nemesis...), h.harness...) {
		if f := h.completion(c).Fault; f != nil {
			for _, n := range f.Nodes {
				seen[n.Node] = true
			}
		}
	}
	if len(seen) == 0 {
		for i := range h.ops {
			if n := h.ops[i].Node; n != "" {
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
