package checker

import (
	"math"
	"sort"
	"strconv"

	"github.com/strongcheck/strongcheck/results"
)

// never is the "no such time" of valInfo.seen and eff.
const never = math.MaxInt64

// valInfo is what the history says about one register value.
type valInfo struct {
	writer int   // index into history.clients of the write or cas that wrote it; -1 if none
	seen   int64 // earliest completion of an ok read or ok cas that observed it; never if none
	// expected: an info cas expected it. Such a cas is kept by the
	// linearizability check if its own value was observed, and then needs
	// this value's write too.
	expected bool
}

// valIndex maps register values to valInfo. Values are unique and usually
// dense (a counter), so a slice is used when it fits, a map otherwise.
type valIndex struct {
	dense  []valInfo
	sparse map[int64]valInfo
}

func newValIndex(maxV int64, n int) *valIndex {
	if maxV >= 0 && maxV <= int64(4*n+1024) {
		d := make([]valInfo, maxV+1)
		for i := range d {
			d[i] = valInfo{writer: -1, seen: never}
		}
		return &valIndex{dense: d}
	}
	return &valIndex{sparse: make(map[int64]valInfo, n)}
}

func (x *valIndex) get(v int64) valInfo {
	if x.dense != nil {
		if v >= 0 && v < int64(len(x.dense)) {
			return x.dense[v]
		}
		return valInfo{writer: -1, seen: never}
	}
	if vi, ok := x.sparse[v]; ok {
		return vi
	}
	return valInfo{writer: -1, seen: never}
}

func (x *valIndex) setWriter(v int64, c int) {
	if x.dense != nil {
		if v >= 0 && v < int64(len(x.dense)) {
			x.dense[v].writer = c
		}
		return
	}
	vi := x.get(v)
	vi.writer = c
	x.sparse[v] = vi
}

func (x *valIndex) expect(v int64) {
	if x.dense != nil {
		if v >= 0 && v < int64(len(x.dense)) {
			x.dense[v].expected = true
		}
		return
	}
	vi := x.get(v)
	vi.expected = true
	x.sparse[v] = vi
}

func (x *valIndex) observe(v int64, t int64) {
	if x.dense != nil {
		if v >= 0 && v < int64(len(x.dense)) && t < x.dense[v].seen {
			x.dense[v].seen = t
		}
		return
	}
	vi := x.get(v)
	if t < vi.seen {
		vi.seen = t
		x.sparse[v] = vi
	}
}

// regIndex is the register workload's view of a history.
type regIndex struct {
	keys  []string // in natural order (k2 before k10)
	byKey [][]int  // per key: indices into history.clients, invoke order
	vals  *valIndex
}

func isRegister(op *results.Op) bool { return op.Workload == results.WorkloadRegister }

// regValue is the value a register operation carries: what a write or cas
// wrote (from the invoke) or what a read returned (from the completion).
func (h *history) regValue(c call) (int64, bool) {
	inv := &h.ops[c.inv]
	if inv.F == results.FRead {
		if c.comp >= 0 && h.ops[c.comp].Value != nil {
			return *h.ops[c.comp].Value, true
		}
		return 0, false
	}
	if inv.Value != nil {
		return *inv.Value, true
	}
	if c.comp >= 0 && h.ops[c.comp].Value != nil {
		return *h.ops[c.comp].Value, true
	}
	return 0, false
}

func indexRegister(h *history) *regIndex {
	ri := &regIndex{}
	keyOf := map[string]int{}
	var maxV int64
	n := 0
	for ci, c := range h.clients {
		inv := &h.ops[c.inv]
		if !isRegister(inv) {
			continue
		}
		k, ok := keyOf[inv.Key]
		if !ok {
			k = len(ri.keys)
			keyOf[inv.Key] = k
			ri.keys = append(ri.keys, inv.Key)
			ri.byKey = append(ri.byKey, nil)
		}
		ri.byKey[k] = append(ri.byKey[k], ci)
		if v, ok := h.regValue(c); ok && v > maxV {
			maxV = v
		}
		n++
	}
	ri.vals = newValIndex(maxV, n)
	for _, calls := range ri.byKey {
		for _, ci := range calls {
			c := h.clients[ci]
			inv := &h.ops[c.inv]
			v, ok := h.regValue(c)
			if !ok {
				continue
			}
			okDone := h.typ(c) == results.OK
			switch inv.F {
			case results.FWrite, results.FCAS:
				ri.vals.setWriter(v, ci)
				if inv.F == results.FCAS && inv.Expect != nil {
					switch h.typ(c) {
					case results.OK:
						ri.vals.observe(*inv.Expect, h.ops[c.comp].Time)
					case results.Info:
						ri.vals.expect(*inv.Expect)
					}
				}
			case results.FRead:
				if okDone {
					ri.vals.observe(v, h.ops[c.comp].Time)
				}
			}
		}
	}
	// Natural key order, carrying byKey along.
	order := make([]int, len(ri.keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return naturalLess(ri.keys[order[a]], ri.keys[order[b]]) })
	keys, byKey := make([]string, len(order)), make([][]int, len(order))
	for i, o := range order {
		keys[i], byKey[i] = ri.keys[o], ri.byKey[o]
	}
	ri.keys, ri.byKey = keys, byKey
	return ri
}

// eff is the latest time by which value v certainly existed in the
// database: the acknowledgement of its write, or the first observation of it,
// whichever came first. The initial value 0 existed from the start. ok is
// false when no write produced v (an unexpected value).
func (ri *regIndex) eff(h *history, v int64) (t int64, ok bool) {
	if v == 0 {
		return math.MinInt64, true
	}
	vi := ri.vals.get(v)
	if vi.writer < 0 {
		return 0, false
	}
	t = vi.seen
	if c := h.clients[vi.writer]; h.typ(c) == results.OK && h.ops[c.comp].Time < t {
		t = h.ops[c.comp].Time
	}
	return t, true
}

// naturalLess orders strings with a numeric suffix by that number, so k2
// comes before k10.
func naturalLess(a, b string) bool {
	pa, na, oka := splitNum(a)
	pb, nb, okb := splitNum(b)
	if oka && okb && pa == pb {
		return na < nb
	}
	return a < b
}

func splitNum(s string) (string, int, bool) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	if i == len(s) {
		return s, 0, false
	}
	n, err := strconv.Atoi(s[i:])
	if err != nil {
		return s, 0, false
	}
	return s[:i], n, true
}
