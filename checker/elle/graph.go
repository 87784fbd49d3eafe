package elle

// Edge relations as bits, so that a search can allow several at once.
const (
	bWW uint8 = 1 << iota
	bWR
	bRW
	bRT
	bProc
	bAll = bWW | bWR | bRW | bRT | bProc
)

func relOf(b uint8) Rel {
	switch b {
	case bWW:
		return WW
	case bWR:
		return WR
	case bRW:
		return RW
	case bRT:
		return Realtime
	}
	return Process
}

// edges collects the dependency edges before they are laid out as a graph.
type edges struct {
	from, to []int32
	rel      []uint8
	count    [5]int // by relation bit position
}

func (e *edges) add(from, to int32, rel uint8) {
	if from == to || from < 0 || to < 0 {
		return
	}
	e.from = append(e.from, from)
	e.to = append(e.to, to)
	e.rel = append(e.rel, rel)
	switch rel {
	case bWW:
		e.count[0]++
	case bWR:
		e.count[1]++
	case bRW:
		e.count[2]++
	case bRT:
		e.count[3]++
	default:
		e.count[4]++
	}
}

// graph is the dependency graph in compressed sparse row form: the edges
// out of node v are adj[off[v]:off[v+1]] with relations rel[...].
type graph struct {
	n   int
	off []int32
	adj []int32
	rel []uint8
}

// newGraph lays the edges out by source node (a counting sort) and frees
// the collected lists.
func newGraph(n int, e *edges) *graph {
	g := &graph{n: n, off: make([]int32, n+1), adj: make([]int32, len(e.from)), rel: make([]uint8, len(e.from))}
	for _, f := range e.from {
		g.off[f+1]++
	}
	for v := 0; v < n; v++ {
		g.off[v+1] += g.off[v]
	}
	pos := make([]int32, n)
	copy(pos, g.off[:n])
	for i, f := range e.from {
		p := pos[f]
		g.adj[p], g.rel[p] = e.to[i], e.rel[i]
		pos[f]++
	}
	e.from, e.to, e.rel = nil, nil, nil
	return g
}

// sccs finds the strongly connected components of the subgraph of g with
// the relations in mask, restricted to the nodes v with in(v) (nil: all),
// with Tarjan's algorithm on an explicit stack (no recursion, so a
// component of a million transactions cannot overflow anything). It
// returns the component id of every node (-1 outside the subgraph or in a
// component of one node) and the nontrivial components' members.
func (g *graph) sccs(mask uint8, in func(v int32) bool, stop func() bool) (comp []int32, members [][]int32, stopped bool) {
	const unvisited = -1
	index := make([]int32, g.n)
	low := make([]int32, g.n)
	comp = make([]int32, g.n)
	onStack := make([]bool, g.n)
	for i := range index {
		index[i], comp[i] = unvisited, -1
	}
	var stack []int32 // Tarjan's stack
	type frame struct {
		v    int32
		next int32 // next edge position to look at
	}
	var call []frame // the explicit call stack
	next := int32(0)
	steps := 0
	for root := int32(0); root < int32(g.n); root++ {
		if index[root] != unvisited || (in != nil && !in(root)) {
			continue
		}
		call = append(call[:0], frame{root, g.off[root]})
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			if steps++; steps&0xffff == 0 && stop != nil && stop() {
				return comp, members, true
			}
			f := &call[len(call)-1]
			v := f.v
			if f.next < g.off[v+1] {
				p := f.next
				f.next++
				if g.rel[p]&mask == 0 {
					continue
				}
				w := g.adj[p]
				if in != nil && !in(w) {
					continue
				}
				if index[w] == unvisited {
					index[w], low[w] = next, next
					next++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, g.off[w]})
				} else if onStack[w] && index[w] < low[v] {
					low[v] = index[w]
				}
				continue
			}
			// v is done: pop it and pass its low link to its caller.
			call = call[:len(call)-1]
			if len(call) > 0 {
				if u := call[len(call)-1].v; low[v] < low[u] {
					low[u] = low[v]
				}
			}
			if low[v] == index[v] {
				stack, members = popComponent(v, stack, onStack, comp, members)
			}
		}
	}
	return comp, members, false
}

// popComponent takes the component rooted at v off Tarjan's stack and,
// when it has more than one node, records it.
func popComponent(v int32, stack []int32, onStack []bool, comp []int32, members [][]int32) ([]int32, [][]int32) {
	start := len(stack) - 1
	for stack[start] != v {
		start--
	}
	scc := stack[start:]
	for _, w := range scc {
		onStack[w] = false
	}
	if len(scc) > 1 {
		id := int32(len(members))
		m := make([]int32, len(scc))
		copy(m, scc)
		for _, w := range m {
			comp[w] = id
		}
		members = append(members, m)
	}
	return stack[:start], members
}
