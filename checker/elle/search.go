package elle

import (
	"slices"
)

// A cycle class is searched as a shortest path in the product of the graph
// with a small automaton over the relations of the edges taken so far. The
// automaton's state is a bit set:
const (
	sCount  uint8 = 3 // bits 0-1: read-write edges taken, 0, 1 or 2 (two or more)
	sLastRW uint8 = 4 // the last edge taken was read-write
	sAdj    uint8 = 8 // two read-write edges were adjacent
	sWR     uint8 = 16
	sRT     uint8 = 32
	sProc   uint8 = 64
)

// base is a class's constraint on its data edges.
type base uint8

const (
	baseG0 base = iota
	baseG1c
	baseSingle
	baseNonadjacent
	baseG2
)

// class is one cycle class to search for.
type class struct {
	kind  Kind
	base  base
	allow uint8 // relations the cycle may use
	start uint8 // the relation of the edge every search starts from
	// variant is bRT or bProc when the cycle must use such an edge.
	variant uint8
	track   uint8 // state bits that matter (the others are dropped)
}

// classes are searched in this order, most severe first.
var classes = func() []class {
	type b struct {
		kind  Kind
		base  base
		allow uint8
		start uint8
		track uint8
	}
	bases := []b{
		{G0, baseG0, bWW, bWW, 0},
		{G1c, baseG1c, bWW | bWR, bWR, 0},
		{GSingle, baseSingle, bWW | bWR | bRW, bRW, sCount},
		{GNonadjacent, baseNonadjacent, bWW | bWR | bRW, bRW, sCount | sLastRW},
		{G2Item, baseG2, bWW | bWR | bRW, bRW, sCount | sLastRW | sAdj},
	}
	var out []class
	for _, v := range []struct {
		bit    uint8
		state  uint8
		suffix string
	}{{0, 0, ""}, {bProc, sProc, "-process"}, {bRT, sRT, "-realtime"}} {
		for _, c := range bases {
			out = append(out, class{kind: c.kind + Kind(v.suffix), base: c.base, allow: c.allow | v.bit, start: c.start,
				variant: v.bit, track: c.track | v.state})
		}
	}
	return out
}()

// initial is the state after the start edge.
func (c *class) initial() uint8 {
	if c.start == bRW {
		return (1 & sCount) | sLastRW
	}
	if c.start == bWR {
		return sWR
	}
	return 0
}

// step is the state after taking an edge of relation rel, or false when
// the class forbids that path.
func (c *class) step(s uint8, rel uint8) (uint8, bool) {
	if rel&c.allow == 0 {
		return 0, false
	}
	switch rel {
	case bRW:
		n := s & sCount
		if c.base == baseSingle && n >= 1 {
			return 0, false
		}
		if s&sLastRW != 0 {
			if c.base == baseNonadjacent {
				return 0, false
			}
			s |= sAdj
		}
		if n < 2 {
			s = s&^sCount | (n + 1)
		}
		s |= sLastRW
	case bWR:
		s = s&^sLastRW | sWR
	case bRT:
		s = s&^sLastRW | sRT
	case bProc:
		s = s&^sLastRW | sProc
	default:
		s &^= sLastRW
	}
	return s & c.track, true
}

// accepts reports whether a path in state s that returns to the start node
// closes a cycle of the class. The closing adjacency is between the last
// edge and the start edge.
func (c *class) accepts(s uint8) bool {
	if c.variant == bRT && s&sRT == 0 || c.variant == bProc && s&sProc == 0 {
		return false
	}
	startRW := c.start == bRW
	lastRW := s&sLastRW != 0
	n := s & sCount
	switch c.base {
	case baseG0, baseG1c:
		return true
	case baseSingle:
		return startRW || n == 1
	case baseNonadjacent:
		return n >= 2 && !(startRW && lastRW)
	default:
		return n >= 2 && (s&sAdj != 0 || startRW && lastRW)
	}
}

// found is a cycle: its nodes in order (the first is the start edge's
// source) and the relation of each edge, rels[i] from nodes[i] to
// nodes[(i+1) % len].
type found struct {
	nodes []int32
	rels  []uint8
	// shortest: the shortest cycle of the class through its start edge.
	shortest bool
}

// searcher searches one strongly connected component. Its arrays are
// indexed by (node's position in the component) * states + state.
type searcher struct {
	g      *graph
	local  []int32 // node -> position in the component, -1 outside
	nodes  []int32
	seen   []uint32 // generation stamp per (node, state)
	parent []int32  // predecessor (node, state) slot
	prel   []uint8  // relation of the edge from the predecessor
	gen    uint32
	queue  []int32
	visits int
}

func newSearcher(g *graph, local []int32, nodes []int32) *searcher {
	return &searcher{g: g, local: local, nodes: nodes}
}

// stateIndex compacts class states into 0..n-1 (of) and back (back).
type stateIndex struct {
	of   [128]int8
	back []uint8
	n    int
}

func (c *class) states() stateIndex {
	var si stateIndex
	for i := range si.of {
		si.of[i] = -1
	}
	for s := 0; s < 128; s++ {
		if uint8(s)&^c.track == 0 {
			si.of[s] = int8(si.n)
			si.back = append(si.back, uint8(s))
			si.n++
		}
	}
	return si
}

// shortestThrough finds the shortest cycle of class c that begins with the
// edge u -> v (relation c.start), visiting at most limit (node, state)
// pairs and no cycle longer than maxLen. done is false when the limit
// stopped it first.
func (sr *searcher) shortestThrough(c *class, si *stateIndex, u, v int32, maxLen, limit int) (cyc *found, done bool) {
	S := int32(si.n)
	need := len(sr.nodes) * si.n
	if len(sr.seen) < need {
		sr.seen = make([]uint32, need)
		sr.parent = make([]int32, need)
		sr.prel = make([]uint8, need)
		sr.gen = 0
	}
	sr.gen++
	if sr.gen == 0 {
		clear(sr.seen)
		sr.gen = 1
	}
	s0 := c.initial() & c.track
	slot := func(node int32, s uint8) int32 { return sr.local[node]*S + int32(si.of[s]) }
	first := slot(v, s0)
	sr.seen[first], sr.parent[first], sr.prel[first] = sr.gen, -1, c.start
	sr.queue = append(sr.queue[:0], first)
	level, levelEnd := 1, 1
	for h := 0; h < len(sr.queue); h++ {
		if h == levelEnd {
			level++
			levelEnd = len(sr.queue)
			if level+1 > maxLen {
				return nil, true // every longer cycle is no better
			}
		}
		sr.visits++
		if limit--; limit < 0 {
			return nil, false
		}
		cur := sr.queue[h]
		node := sr.nodes[cur/S]
		s := si.back[cur%S]
		for p := sr.g.off[node]; p < sr.g.off[node+1]; p++ {
			w := sr.g.adj[p]
			if sr.local[w] < 0 {
				continue
			}
			ns, ok := c.step(s, sr.g.rel[p])
			if !ok {
				continue
			}
			if w == u {
				if c.accepts(ns) {
					return sr.path(cur, S, u, sr.g.rel[p]), true
				}
				continue
			}
			next := slot(w, ns)
			if sr.seen[next] == sr.gen {
				continue
			}
			sr.seen[next], sr.parent[next], sr.prel[next] = sr.gen, cur, sr.g.rel[p]
			sr.queue = append(sr.queue, next)
		}
	}
	return nil, true
}

// path rebuilds the cycle u -> v ... -> (node of last) -> u.
func (sr *searcher) path(last int32, S int32, u int32, closing uint8) *found {
	var nodes []int32
	var rels []uint8
	rels = append(rels, closing)
	for cur := last; cur >= 0; cur = sr.parent[cur] {
		nodes = append(nodes, sr.nodes[cur/S])
		rels = append(rels, sr.prel[cur])
	}
	nodes = append(nodes, u)
	slices.Reverse(nodes)
	slices.Reverse(rels)
	return &found{nodes: nodes, rels: rels, shortest: true}
}
