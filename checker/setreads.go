package checker

import (
	"context"
	"fmt"
	"sort"

	"github.com/strongcheck/strongcheck/results"
)

// checkSetReads judges the set workload's reads the way checkReads judges
// the register's: a read is stale when it lacks an element whose add was
// acknowledged before it began, non-monotonic when it lacks one that the
// last read on the same node (ended before it began, no failover between)
// had seen, new-then-old when it lacks one that any read ended before it
// began had seen. Only elements inside the range a read covered count.
// Memory is a few bytes per element, dense by element.
func checkSetReads(ctx context.Context, h *history, dc *docContext, an *anomalySet) {
	adds := h.setAdds()
	var reads []int32 // indices into h.clients
	for i := range h.clients {
		if c := &h.clients[i]; c.wl == wlSet && c.f == fRead && c.typ == tOK && c.side >= 0 {
			reads = append(reads, int32(i))
		}
	}
	if len(reads) == 0 || ctx.Err() != nil {
		return
	}
	// seenT[e], seenBy[e]: the earliest completion of a read that saw e,
	// and that read.
	seenT := make([]int64, len(adds))
	seenBy := make([]int32, len(adds))
	for i := range seenT {
		seenT[i], seenBy[i] = never, -1
	}
	for _, ci := range reads {
		c := &h.clients[ci]
		h.eachPresent(&h.setReads[c.side], func(e int64) {
			if e >= 1 && e < int64(len(adds)) && c.compT < seenT[e] {
				seenT[e], seenBy[e] = c.compT, ci
			}
		})
	}
	byNode := map[uint8][]int32{} // reads per node, by completion
	for _, ci := range reads {
		byNode[h.clients[ci].node] = append(byNode[h.clients[ci].node], ci)
	}
	for _, rs := range byNode {
		sort.Slice(rs, func(a, b int) bool { return h.clients[rs[a]].compT < h.clients[rs[b]].compT })
	}
	for _, ci := range reads {
		if ctx.Err() != nil {
			return
		}
		c := h.clients[ci]
		r := &h.setReads[c.side]
		node := h.nodeName(&c)
		role := dc.rt.roleAt(node, c.invT)
		prev := previousOnNode(h, byNode[c.node], c.invT)
		if prev >= 0 && dc.rt.movedBetween(h.clients[prev].compT, c.invT) {
			prev = -1
		}
		var stale, behindNode, behind int64 = -1, -1, -1
		for _, e := range r.missing {
			if e < 1 || e >= int64(len(adds)) || adds[e] < 0 {
				continue
			}
			if a := &h.clients[adds[e]]; stale < 0 && a.typ == tOK && a.compT < c.invT {
				stale = e
			}
			if behindNode < 0 && prev >= 0 && h.setReads[h.clients[prev].side].present(e) {
				behindNode = e
			}
			if behind < 0 && seenT[e] < c.invT {
				behind = e
			}
		}
		if stale >= 0 {
			add := h.clients[adds[stale]]
			an.add(instance{kind: KindStaleRead, doc: dc.staleRead(node, role, c.invT, add), node: node, role: role,
				t: c.invT, durNS: c.invT - add.compT, key: results.WorkloadSet, workload: results.WorkloadSet,
				example: func() Example {
					return Example{Key: results.WorkloadSet, Ops: []OpRef{h.ref(c), h.ref(add)},
						Text: fmt.Sprintf("set read on %s (%s) lacked element %d, acknowledged %s before the read began", node, role, stale, fmtNS(c.invT-add.compT))}
				}})
		}
		switch {
		case behindNode >= 0:
			an.add(setBehind(h, dc, KindNonMonotonic, docNonMonotonic, c, h.clients[prev], behindNode, adds))
		case behind >= 0:
			an.add(setBehind(h, dc, KindNewThenOld, docVerdict{}, c, h.clients[seenBy[behind]], behind, adds))
		}
	}
}

// setBehind is the instance of read r lacking element e that the earlier
// read had seen.
func setBehind(h *history, dc *docContext, kind Kind, doc docVerdict, r, earlier call, e int64, adds []int32) instance {
	node, enode := h.nodeName(&r), h.nodeName(&earlier)
	role := dc.rt.roleAt(node, r.invT)
	erole := dc.rt.roleAt(enode, earlier.invT)
	add := h.clients[adds[e]]
	if doc == (docVerdict{}) {
		doc = dc.newThenOld(erole, node, role, r.invT, add.invT, add.compT, add.warned() || add.cancelled())
	}
	return instance{kind: kind, doc: doc, node: node, role: role, t: r.invT, key: results.WorkloadSet,
		example: func() Example {
			return Example{Key: results.WorkloadSet, Ops: []OpRef{h.ref(r), h.ref(earlier), h.ref(add)},
				Text: fmt.Sprintf("set read on %s (%s) lacked element %d, which a read on %s (%s) that ended %s before it began had seen",
					node, role, e, enode, erole, fmtNS(r.invT-earlier.compT))}
		}}
}

// previousOnNode is the read (index into h.clients) among onNode that
// completed last before t, or -1.
func previousOnNode(h *history, onNode []int32, t int64) int32 {
	i := sort.Search(len(onNode), func(i int) bool { return h.clients[onNode[i]].compT >= t }) - 1
	if i < 0 {
		return -1
	}
	return onNode[i]
}
