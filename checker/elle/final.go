package elle

import (
	"fmt"
	"sort"
	"strings"
)

// finalRead picks the final read that judges lost appends: the latest ok
// one on the final primary, or, when the primary has none, on the only node
// that has one. It returns -1 when there is none to use.
func (x *analysis) finalRead() int32 {
	byNode := map[string]int32{}
	for i := range x.txns {
		if t := &x.txns[i]; t.final && t.ok() {
			byNode[x.nodes[t.node]] = int32(i)
		}
	}
	if len(x.finalFailed) > 0 {
		x.note(fmt.Sprintf("the final read failed on %s", strings.Join(x.finalFailed, ", ")))
	}
	if len(byNode) == 0 {
		return -1
	}
	if t, ok := byNode[x.roles.finalPrimary(x.opts.FinalPrimary)]; ok {
		return t
	}
	if len(byNode) == 1 {
		for _, t := range byNode {
			return t
		}
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	x.note(fmt.Sprintf("lost appends not judged: no final read on the final primary %q, and several other nodes have one (%s)",
		x.roles.finalPrimary(x.opts.FinalPrimary), strings.Join(nodes, ", ")))
	return -1
}

// lostAppends reports every acknowledged append (of an ok transaction)
// that the final read does not show. A key the final read does not mention
// has no row, which is the empty list.
func (x *analysis) lostAppends() {
	f := x.finalRead()
	if f < 0 {
		return
	}
	x.finalNode = x.nodes[x.txns[f].node]
	finalList := map[int32][]int64{}
	for j, m := range x.txns[f].mops {
		k := x.mopKey[x.mopOff[f]+int32(j)]
		if k < 0 || !m.IsRead() {
			continue
		}
		finalList[k] = m.Read
		for _, e := range m.Read {
			if r, ok := x.appends.lookup(k, e); ok {
				x.appends.refs[r].inFinal = true
			}
		}
	}
	for r := range x.appends.refs {
		a := &x.appends.refs[r]
		if a.inFinal || !x.txns[a.txn].ok() {
			continue
		}
		x.addCase(LostAppend, rawCase{txns: []int32{a.txn, f}, key: a.key, elems: []int64{x.appendValue(int32(r))},
			list: finalList[a.key]})
	}
}

// appendValue is the element of append r (found again in its transaction).
func (x *analysis) appendValue(r int32) int64 {
	a := &x.appends.refs[r]
	t := &x.txns[a.txn]
	for j, m := range t.mops {
		if m.IsRead() || x.mopKey[x.mopOff[a.txn]+int32(j)] != a.key {
			continue
		}
		if q, ok := x.appends.lookup(a.key, m.Value); ok && q == r {
			return m.Value
		}
	}
	return 0
}
