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
	writer int   // index into regIndex.flat of the write or cas that wrote it; -1 if none
	seen   int64 // earliest completion of an ok read or ok cas that observed it; never if none
	// seenP is seen among the reads the primary served (and cas, which
	// the primary runs): the primary's visible order, which a standby
	// that replays a commit before the primary shows it does not follow.
	seenP int64
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
			d[i] = valInfo{writer: -1, seen: never, seenP: never}
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
		return valInfo{writer: -1, seen: never, seenP: never}
	}
	if vi, ok := x.sparse[v]; ok {
		return vi
	}
	return valInfo{writer: -1, seen: never, seenP: never}
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
	x.update(v, func(vi *valInfo) { vi.seen = min(vi.seen, t) })
}

// observeP records an observation by the primary.
func (x *valIndex) observeP(v int64, t int64) {
	x.update(v, func(vi *valInfo) { vi.seenP = min(vi.seenP, t) })
}

func (x *valIndex) update(v int64, fn func(*valInfo)) {
	if x.dense != nil {
		if v >= 0 && v < int64(len(x.dense)) {
			fn(&x.dense[v])
		}
		return
	}
	vi := x.get(v)
	fn(&vi)
	x.sparse[v] = vi
}

// regIndex is the register workload's view of a history.
type regIndex struct {
	keys  []string // in natural order (k2 before k10)
	byKey [][]rop  // per key, in invoke order; sub-slices of flat
	// offset[k] is where key k's operations start in flat.
	offset []int32
	flat   []rop
	vals   *valIndex
	// repeats: some value is written twice (repeats.go); vals is then
	// ambiguous and nothing is pruned.
	repeats bool
}

// at returns the operation at flat position i of the byKey array (valInfo.writer).
func (ri *regIndex) at(i int) *rop { return &ri.flat[i] }

func isRegister(op *results.Op) bool { return op.Workload == results.WorkloadRegister }

// indexRegister groups the register operations by key (a counting sort,
// keys in natural order) and indexes their values.
func indexRegister(h *history) *regIndex {
	ri := &regIndex{}
	order := make([]int32, len(h.regKeys))
	for i := range order {
		order[i] = int32(i)
	}
	sort.Slice(order, func(a, b int) bool { return naturalLess(h.regKeys[order[a]], h.regKeys[order[b]]) })
	rank := make([]int32, len(order))
	for r, k := range order {
		rank[k] = int32(r)
		ri.keys = append(ri.keys, h.regKeys[k])
	}
	count := make([]int, len(order)+1)
	var maxV int64
	for i := range h.rops {
		r := &h.rops[i]
		count[rank[r.key]+1]++
		maxV = max(maxV, r.value, r.expect)
	}
	for k := 1; k < len(count); k++ {
		count[k] += count[k-1]
	}
	ri.flat = make([]rop, len(h.rops))
	pos := append([]int(nil), count[:len(order)]...)
	for i := range h.rops {
		k := rank[h.rops[i].key]
		ri.flat[pos[k]] = h.rops[i]
		ri.flat[pos[k]].key = k
		pos[k]++
	}
	h.rops = nil // grouped copy from here on
	ri.byKey = make([][]rop, len(order))
	ri.offset = make([]int32, len(order))
	for k := range order {
		ri.byKey[k] = ri.flat[count[k]:count[k+1]:count[k+1]]
		ri.offset[k] = int32(count[k])
	}
	ri.repeats = valuesRepeat(ri)
	ri.vals = newValIndex(maxV, len(ri.flat))
	for i := range ri.flat {
		r := &ri.flat[i]
		if !r.hasValue {
			continue
		}
		switch r.kind {
		case opWrite, opCAS:
			ri.vals.setWriter(r.value, i)
			if r.kind == opCAS && r.hasExpect {
				switch r.typ {
				case tOK:
					ri.vals.observe(r.expect, r.compT)
				case tInfo:
					ri.vals.expect(r.expect)
				}
			}
		case opRead:
			if r.ok() {
				ri.vals.observe(r.value, r.compT)
			}
		}
	}
	return ri
}

// eff is the latest time by which value v certainly existed in the
// database: the acknowledgement of its write, or the first observation of it
// (on any node), whichever came first. The initial value 0 existed from the
// start. ok is false when no write produced v (an unexpected value).
func (ri *regIndex) eff(v int64) (t int64, ok bool) { return ri.effWith(v, false) }

// effP is eff as the primary showed it: the acknowledgement, or the first
// observation by the primary.
func (ri *regIndex) effP(v int64) (t int64, ok bool) { return ri.effWith(v, true) }

func (ri *regIndex) effWith(v int64, primary bool) (t int64, ok bool) {
	if v == 0 {
		return math.MinInt64, true
	}
	vi := ri.vals.get(v)
	if vi.writer < 0 {
		return 0, false
	}
	t = vi.seen
	if primary {
		t = vi.seenP
	}
	if w := ri.at(vi.writer); w.ok() && w.compT < t {
		t = w.compT
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

// cancelledWrites reports whether a write or cas of key was acknowledged
// with the sync-wait warning or ended info after a timeout: its wait for
// the standbys may have been cancelled.
func (ri *regIndex) cancelledWrites(key string) bool {
	for k, name := range ri.keys {
		if name != key {
			continue
		}
		for i := range ri.byKey[k] {
			if op := &ri.byKey[k][i]; op.kind != opRead && (op.warned || op.cancelled) {
				return true
			}
		}
	}
	return false
}
