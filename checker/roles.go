package checker

import (
	"slices"
	"sort"

	"github.com/strongcheck/strongcheck/results"
)

// Roles of a node at a moment, as the history tells them.
const (
	rolePrimary = "primary"
	roleStandby = "standby"
)

// roleStep is one nemesis or harness step that recorded the cluster's state:
// the span it ran in and the primary it left (as its completion recorded).
type roleStep struct {
	inv, comp int64
	primary   string // the only node recorded as primary after it; "" none
	// disrupts: the primary changed, or the step acted on the primary's
	// processes (a reading on it is not a plain primary read meanwhile).
	disrupts bool
	// moves: the step changed which node follows which (a promotion,
	// re-pointing, a rejoin or rewind, the settle step): a node's view may
	// legitimately move back across it.
	moves bool
	kind  string
}

// roleTimeline is who was primary when. Nemesis steps run one at a time,
// so between two steps the roles are those the earlier one recorded.
type roleTimeline struct {
	initial string
	steps   []roleStep
	comps   []int64 // steps[i].comp, ascending
}

// roleTimeline builds the timeline from the nemesis and harness steps whose
// completion recorded roles, in completion order.
func (h *history) roleTimeline() *roleTimeline {
	if h.rt != nil {
		return h.rt
	}
	rt := &roleTimeline{}
	defer func() { h.rt = rt }()
	var calls []step
	for c := range h.nemesisSteps() {
		calls = append(calls, c)
	}
	for c := range h.harnessSteps() {
		if op := h.stepOp(c); op.Fault != nil {
			calls = append(calls, c)
		}
	}
	sort.SliceStable(calls, func(a, b int) bool { return h.stepEnd(calls[a]) < h.stepEnd(calls[b]) })
	prev := ""
	started := false
	for _, c := range calls {
		op := h.stepOp(c)
		f := op.Fault
		if f == nil {
			continue
		}
		p, known := recordedPrimary(f)
		if !known {
			continue
		}
		if !started {
			started = true
			rt.initial = initialPrimary(h, p, c)
			prev = rt.initial
			if h.special[c.inv].F == results.FTopology {
				continue // the harness's record of the start: no step
			}
		}
		kind := h.special[c.inv].F
		st := roleStep{inv: c.invT, comp: h.stepEnd(c), primary: p, kind: kind}
		st.disrupts = p != prev || (slices.Contains(f.Targets, prev) && actsOnProcesses(kind))
		st.moves = st.disrupts || movesRoles(kind)
		rt.steps = append(rt.steps, st)
		prev = p
	}
	if !started {
		rt.initial = firstWriteNode(h)
	}
	rt.comps = make([]int64, len(rt.steps))
	for i, s := range rt.steps {
		rt.comps[i] = s.comp
	}
	return rt
}

// recordedPrimary is the primary a step's record shows: the one node whose
// role is primary, or the step's Primary when it has no node states.
func recordedPrimary(f *results.Fault) (string, bool) {
	if len(f.Nodes) > 0 {
		var prim []string
		for _, n := range f.Nodes {
			if n.Role == rolePrimary {
				prim = append(prim, n.Node)
			}
		}
		if len(prim) == 1 {
			return prim[0], true
		}
		if len(prim) == 0 {
			return "", true
		}
		return "", true // two primaries: nobody is a plain primary
	}
	if f.Primary != "" {
		return f.Primary, true
	}
	return "", false
}

// initialPrimary is the primary before the first step: what the harness
// recorded at the start, else the first step's target when it killed the
// primary, else the primary the first step saw.
func initialPrimary(h *history, first string, c step) string {
	inv := &h.special[c.inv]
	if inv.F == results.FTopology {
		return first
	}
	if inv.Fault != nil && inv.Fault.Kind == kindKillPrimary && len(inv.Fault.Targets) > 0 {
		return inv.Fault.Targets[0]
	}
	if first != "" {
		return first
	}
	return firstWriteNode(h)
}

// firstWriteNode is the node of the first acknowledged client write: writes
// go to the primary.
func firstWriteNode(h *history) string {
	for i := range h.clients {
		if c := &h.clients[i]; c.write() && c.typ == tOK {
			return h.nodeName(c)
		}
	}
	return ""
}

func actsOnProcesses(f string) bool {
	switch f {
	case kindKillPrimary, "kill-standby", "crash-primary", "kill", "crash", "stop", "start", "pause", "resume", "restart-old-primary":
		return true
	}
	return false
}

func movesRoles(f string) bool {
	switch f {
	case kindFailover, "repoint", "rejoin", "settle", "promote", "await-primary", "restart-old-primary", "switch-primary":
		return true
	}
	return false
}

// primaryAt is the primary at time t: the one the last step completed at or
// before t left.
func (rt *roleTimeline) primaryAt(t int64) string {
	i := sort.Search(len(rt.comps), func(i int) bool { return rt.comps[i] > t }) - 1
	if i < 0 {
		return rt.initial
	}
	return rt.steps[i].primary
}

// roleAt is node's role at time t.
func (rt *roleTimeline) roleAt(node string, t int64) string {
	if node != "" && rt.primaryAt(t) == node {
		return rolePrimary
	}
	return roleStandby
}

// primaryThroughout reports whether node was the primary from a to b with
// no step disrupting it in between: a read in that span is a read of the
// primary.
func (rt *roleTimeline) primaryThroughout(node string, a, b int64) bool {
	if rt.roleAt(node, a) != rolePrimary {
		return false
	}
	return !rt.stepBetween(a, b, func(s roleStep) bool { return s.disrupts })
}

// movedBetween reports whether a step that changes who follows whom ran
// between a and b.
func (rt *roleTimeline) movedBetween(a, b int64) bool {
	return rt.stepBetween(a, b, func(s roleStep) bool { return s.moves })
}

// stepBetween reports whether a step matching pred overlaps [a, b].
func (rt *roleTimeline) stepBetween(a, b int64, pred func(roleStep) bool) bool {
	for i := sort.Search(len(rt.comps), func(i int) bool { return rt.comps[i] >= a }); i < len(rt.steps); i++ {
		s := rt.steps[i]
		if s.inv > b {
			break
		}
		if pred(s) {
			return true
		}
	}
	return false
}
