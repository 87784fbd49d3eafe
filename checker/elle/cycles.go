package elle

import (
	"slices"
	"strconv"
	"strings"
)

// Search budgets: per strongly connected component and class, at most
// searchVisits (node, state) pairs are visited over all start edges, and
// at most maxCycles distinct cycles are kept.
const (
	searchVisits = 2_000_000
	maxCycles    = 1000
	maxCycleLen  = 64
)

// cycles finds the strongly connected components of the whole dependency
// graph and, in each, searches every cycle class.
func (x *analysis) cycles() {
	g := x.graph
	stop := x.budget.exceeded
	comp, members, stopped := g.sccs(bAll, nil, stop)
	if stopped || len(members) == 0 {
		return
	}
	inCycle := func(v int32) bool { return comp[v] >= 0 }
	sub := map[uint8][]int32{}
	subComp := func(mask uint8) []int32 {
		if c, ok := sub[mask]; ok {
			return c
		}
		c, _, _ := g.sccs(mask, inCycle, stop)
		sub[mask] = c
		return c
	}
	local := make([]int32, g.n)
	for i := range local {
		local[i] = -1
	}
	for _, m := range members {
		slices.Sort(m)
		for i, v := range m {
			local[v] = int32(i)
		}
		sr := newSearcher(g, local, m)
		for ci := range classes {
			if x.budget.exceeded() {
				return
			}
			x.searchClass(sr, &classes[ci], subComp(classes[ci].allow))
		}
		for _, v := range m {
			local[v] = -1
		}
	}
}

// searchClass searches one class in one component: from every start edge
// inside a component of the class's subgraph, the shortest cycle through
// it; distinct cycles are counted.
func (x *analysis) searchClass(sr *searcher, c *class, sc []int32) {
	si := c.states()
	limit := searchVisits
	seen := map[string]bool{}
	var open bool // a start edge was left untried
	for _, u := range sr.nodes {
		if sc[u] < 0 {
			continue
		}
		for p := sr.g.off[u]; p < sr.g.off[u+1]; p++ {
			v := sr.g.adj[p]
			if sr.g.rel[p] != c.start || sc[v] != sc[u] {
				continue
			}
			if limit <= 0 || len(seen) >= maxCycles || x.budget.exceeded() {
				open = true
				break
			}
			before := sr.visits
			cyc, done := sr.shortestThrough(c, &si, u, v, maxCycleLen, limit)
			limit -= sr.visits - before
			if !done {
				open = true
			}
			if cyc == nil {
				continue
			}
			if c.variant == bRT {
				cyc = x.shortcut(c, cyc)
			}
			key := cycleKey(cyc.nodes)
			if seen[key] {
				continue
			}
			seen[key] = true
			x.addCycle(c.kind, cyc)
		}
		if open {
			break
		}
	}
	if open {
		if len(seen) == 0 {
			x.incomplete[c.kind] = true
		} else {
			x.atLeast[c.kind] = true
		}
	}
}

// cycleKey identifies a cycle by its set of transactions.
func cycleKey(nodes []int32) string {
	s := slices.Clone(nodes)
	slices.Sort(s)
	var b strings.Builder
	for _, v := range s {
		b.WriteString(strconv.Itoa(int(v)))
		b.WriteByte(',')
	}
	return b.String()
}

// shortcut shortens a cycle of a real-time class with real-time edges the
// graph leaves out (it keeps only a transitive reduction of real time): a
// stretch from T_i to T_j is replaced by T_i -realtime-> T_j wherever T_i
// completed before T_j began and the shorter cycle still belongs to the
// class. The start edge stays.
func (x *analysis) shortcut(c *class, f *found) *found {
	for changed := true; changed; {
		changed = false
		m := len(f.nodes)
		for i := 1; i < m && !changed; i++ {
			for j := m; j >= i+2 && !changed; j-- {
				to := f.nodes[j%m]
				if x.txns[f.nodes[i]].compT >= x.txns[to].invT {
					continue
				}
				nodes := append(slices.Clone(f.nodes[:i+1]), f.nodes[j:]...)
				rels := append(append(slices.Clone(f.rels[:i]), bRT), f.rels[j:]...)
				if c.valid(rels) {
					f.nodes, f.rels, changed = nodes, rels, true
				}
			}
		}
	}
	return f
}

// valid replays the automaton over a cycle's relations (the first is the
// start edge).
func (c *class) valid(rels []uint8) bool {
	if len(rels) < 2 || rels[0] != c.start {
		return false
	}
	s := c.initial() & c.track
	for _, r := range rels[1:] {
		var ok bool
		if s, ok = c.step(s, r); !ok {
			return false
		}
	}
	return c.accepts(s)
}
