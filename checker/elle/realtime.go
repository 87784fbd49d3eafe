package elle

import (
	"cmp"
	"slices"
)

// realtimeEdges adds T1 -> T2 whenever T1 completed ok before T2 was
// invoked, as a transitive reduction: the edges come from the frontier of
// completed transactions not yet followed by another completed one, so
// their number grows with the concurrency, not with the square of the
// history. Failed transactions take no part; info ones are invoked but
// never complete.
func (x *analysis) realtimeEdges() {
	n := len(x.txns)
	inv := make([]int32, 0, n)
	done := make([]int32, 0, n)
	for i := range x.txns {
		t := &x.txns[i]
		if t.typ == tFail {
			continue
		}
		inv = append(inv, int32(i))
		if t.compT != never {
			done = append(done, int32(i))
		}
	}
	slices.SortStableFunc(inv, func(a, b int32) int { return cmp.Compare(x.txns[a].invT, x.txns[b].invT) })
	slices.SortStableFunc(done, func(a, b int32) int { return cmp.Compare(x.txns[a].compT, x.txns[b].compT) })
	// in[t] is where t's incoming edges start in the edge list; they end
	// where the next invoke's begin, so t's predecessors are known when it
	// completes.
	inStart := make([]int32, n)
	inEnd := make([]int32, n)
	var frontier []int32
	d := 0
	for _, t := range inv {
		for d < len(done) && x.txns[done[d]].compT < x.txns[t].invT {
			frontier = x.complete(frontier, done[d], inStart, inEnd)
			d++
		}
		inStart[t] = int32(len(x.edges.from))
		for _, f := range frontier {
			x.edges.add(f, t, bRT)
		}
		inEnd[t] = int32(len(x.edges.from))
	}
}

// complete moves t into the frontier: its predecessors leave it.
func (x *analysis) complete(frontier []int32, t int32, inStart, inEnd []int32) []int32 {
	preds := x.edges.from[inStart[t]:inEnd[t]]
	out := frontier[:0]
	for _, f := range frontier {
		if !slices.Contains(preds, f) {
			out = append(out, f)
		}
	}
	return append(out, t)
}

// processEdges links each client process's transactions in the order it ran
// them (failed ones left out: they did not happen). Final reads belong to no
// client process.
func (x *analysis) processEdges() {
	last := map[int32]int32{}
	for i := range x.txns {
		t := &x.txns[i]
		if t.typ == tFail || t.final || t.proc < 0 {
			continue
		}
		if p, ok := last[t.proc]; ok {
			x.edges.add(p, int32(i), bProc)
		}
		last[t.proc] = int32(i)
	}
}
