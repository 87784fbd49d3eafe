package checker

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/strongcheck/strongcheck/results"
)

// setRead is one ok read of the set workload: the elements it saw, sorted,
// and the range of elements it covered.
type setRead struct {
	c      call
	node   string
	lo, hi int64
	vals   []int64
}

// setAdd is what the history says of one element's add.
type setAdd struct {
	c     call
	known bool
}

// checkSetReads judges the set workload's reads the way checkReads judges
// the register's: a read is stale when it lacks an element whose add was
// acknowledged before it began, non-monotonic when it lacks one that the
// last read on the same node (ended before it began, no failover between)
// had seen, new-then-old when it lacks one that any read ended before it
// began had seen. Only elements inside the range a read covered count.
func checkSetReads(ctx context.Context, h *history, dc *docContext, an *anomalySet) {
	adds := map[int64]setAdd{}
	var reads []setRead
	for _, c := range h.clients {
		inv := &h.ops[c.inv]
		if inv.Workload != results.WorkloadSet {
			continue
		}
		switch {
		case inv.F == results.FAdd && inv.Value != nil:
			adds[*inv.Value] = setAdd{c: c, known: true}
		case inv.F == results.FRead && c.typ == results.OK:
			comp := &h.ops[c.comp]
			lo, hi := setRange(comp)
			vals := comp.Values
			if !slices.IsSorted(vals) {
				vals = slices.Sorted(slices.Values(vals))
			}
			reads = append(reads, setRead{c: c, node: comp.Node, lo: lo, hi: hi, vals: vals})
		}
	}
	if len(reads) == 0 || ctx.Err() != nil {
		return
	}
	// seen[e]: the earliest completion of a read that saw e, and that read.
	type sighting struct {
		t    int64
		read int
	}
	seen := map[int64]sighting{}
	for i, r := range reads {
		for _, e := range r.vals {
			if s, ok := seen[e]; !ok || r.c.compT < s.t {
				seen[e] = sighting{r.c.compT, i}
			}
		}
	}
	byNode := map[string][]int{} // reads per node, by completion
	for i, r := range reads {
		byNode[r.node] = append(byNode[r.node], i)
	}
	for _, rs := range byNode {
		sort.Slice(rs, func(a, b int) bool { return reads[rs[a]].c.compT < reads[rs[b]].c.compT })
	}
	for i := range reads {
		if ctx.Err() != nil {
			return
		}
		r := &reads[i]
		role := dc.rt.roleAt(r.node, r.c.invT)
		prev := previousOnNode(reads, byNode[r.node], r.c.invT)
		if prev >= 0 && dc.rt.movedBetween(reads[prev].c.compT, r.c.invT) {
			prev = -1
		}
		var stale, behindNode, behind int64 = -1, -1, -1
		behindFrom := -1
		walkMissing(r, adds, func(e int64) {
			if a := adds[e]; stale < 0 && a.c.typ == results.OK && a.c.compT < r.c.invT {
				stale = e
			}
			if behindNode < 0 && prev >= 0 && contains(reads[prev].vals, e) {
				behindNode = e
			}
			if s, ok := seen[e]; behind < 0 && ok && s.t < r.c.invT {
				behind, behindFrom = e, s.read
			}
		})
		if stale >= 0 {
			add := adds[stale].c
			an.add(instance{kind: KindStaleRead, doc: dc.staleRead(r.node, role, r.c.invT, add), node: r.node, role: role,
				t: r.c.invT, durNS: r.c.invT - add.compT, key: results.WorkloadSet,
				example: func() Example {
					return Example{Key: results.WorkloadSet, Ops: []OpRef{h.ref(r.c), h.ref(add)},
						Text: fmt.Sprintf("set read on %s (%s) lacked element %d, acknowledged %s before the read began", r.node, role, stale, fmtNS(r.c.invT-add.compT))}
				}})
		}
		switch {
		case behindNode >= 0:
			an.add(setBehind(h, dc, KindNonMonotonic, docNonMonotonic, r, &reads[prev], behindNode, adds[behindNode]))
		case behind >= 0:
			an.add(setBehind(h, dc, KindNewThenOld, docVerdict{}, r, &reads[behindFrom], behind, adds[behind]))
		}
	}
}

// setBehind is the instance of read r lacking element e that the earlier
// read had seen.
func setBehind(h *history, dc *docContext, kind Kind, doc docVerdict, r, earlier *setRead, e int64, add setAdd) instance {
	role := dc.rt.roleAt(r.node, r.c.invT)
	erole := dc.rt.roleAt(earlier.node, earlier.c.invT)
	if doc == (docVerdict{}) {
		doc = dc.newThenOld(erole, r.node, role, r.c.invT, add.c.invT, add.c.compT, add.c.warned || add.c.cancelled)
	}
	return instance{kind: kind, doc: doc, node: r.node, role: role, t: r.c.invT, key: results.WorkloadSet,
		example: func() Example {
			refs := []OpRef{h.ref(r.c), h.ref(earlier.c)}
			if add.known {
				refs = append(refs, h.ref(add.c))
			}
			return Example{Key: results.WorkloadSet, Ops: refs,
				Text: fmt.Sprintf("set read on %s (%s) lacked element %d, which a read on %s (%s) that ended %s before it began had seen",
					r.node, role, e, earlier.node, erole, fmtNS(r.c.invT-earlier.c.compT))}
		}}
}

// setRange is the range of elements a set read covered: [lo, hi] when the
// read says, else every element (a whole-set read).
func setRange(op *results.Op) (lo, hi int64) {
	return 1, 1<<62 - 1
}

// walkMissing calls fn for every element inside r's range that some add
// wrote and r lacks, in ascending order.
func walkMissing(r *setRead, adds map[int64]setAdd, fn func(e int64)) {
	hi := r.hi
	if n := int64(len(adds)); hi > n {
		// Elements are handed out from 1 in order: none lies beyond the
		// number of adds.
		hi = n
	}
	j := 0
	for e := r.lo; e <= hi; e++ {
		for j < len(r.vals) && r.vals[j] < e {
			j++
		}
		if j < len(r.vals) && r.vals[j] == e {
			continue
		}
		if _, ok := adds[e]; ok {
			fn(e)
		}
	}
}

// previousOnNode is the read (index into reads) on the same node that
// completed last before t, or -1.
func previousOnNode(reads []setRead, onNode []int, t int64) int {
	i := sort.Search(len(onNode), func(i int) bool { return reads[onNode[i]].c.compT >= t }) - 1
	if i < 0 {
		return -1
	}
	return onNode[i]
}

func contains(sorted []int64, e int64) bool {
	_, ok := slices.BinarySearch(sorted, e)
	return ok
}
