package elle

import "fmt"

// appendRef is one append of the history: who appended which element to
// which key, and where it sits in the key's version order.
type appendRef struct {
	txn int32
	key int32
	pos int32 // position in its key's version order; -1 when no read shows it
	// inter: its transaction appended to the same key again afterwards,
	// so a read ending in this element saw an intermediate state.
	inter   bool
	inFinal bool // present in the final read that judges lost appends
}

type keyValue struct {
	key int32
	val int64
}

// appendTable finds the append of (key, element). Elements are unique per
// key; when they are also unique across keys and dense (a run-wide
// counter, as strongcheck's workload draws them) a slice indexed by the
// element is used, else a map.
type appendTable struct {
	refs  []appendRef
	dense []int32 // element - base -> index into refs + 1; 0: none
	base  int64
	m     map[keyValue]int32
}

func (a *appendTable) lookup(key int32, v int64) (int32, bool) {
	if a.dense != nil {
		i := v - a.base
		if i < 0 || i >= int64(len(a.dense)) || a.dense[i] == 0 {
			return 0, false
		}
		r := a.dense[i] - 1
		return r, a.refs[r].key == key
	}
	r, ok := a.m[keyValue{key, v}]
	return r, ok
}

// buildAppends indexes every append of every transaction (ok, info and
// failed alike: a read of a failed one is an aborted read). An element
// appended twice to one key makes the history ambiguous; the second append
// is ignored and noted.
func (x *analysis) buildAppends() {
	n := 0
	lo, hi := int64(0), int64(0)
	for i := range x.txns {
		for j, m := range x.txns[i].mops {
			if m.IsRead() || x.mopKey[x.mopOff[i]+int32(j)] < 0 {
				continue
			}
			if n == 0 || m.Value < lo {
				lo = m.Value
			}
			if n == 0 || m.Value > hi {
				hi = m.Value
			}
			n++
		}
	}
	a := &x.appends
	a.refs = make([]appendRef, 0, n)
	if n > 0 && uint64(hi-lo) < uint64(4*n+1024) && x.fillAppends(true, lo, hi) {
		return
	}
	a.refs = a.refs[:0]
	a.dense = nil
	a.m = make(map[keyValue]int32, n)
	x.fillAppends(false, lo, hi)
}

// fillAppends fills the table; with dense it gives up (false) as soon as
// an element repeats on another key.
func (x *analysis) fillAppends(dense bool, lo, hi int64) bool {
	a := &x.appends
	if dense {
		a.base, a.dense = lo, make([]int32, hi-lo+1)
	}
	type last struct {
		key int32
		ref int32
	}
	var mine []last // this transaction's latest append per key
	for i := range x.txns {
		mine = mine[:0]
		for j, m := range x.txns[i].mops {
			k := x.mopKey[x.mopOff[i]+int32(j)]
			if m.IsRead() || k < 0 {
				continue
			}
			if prev, dup := a.lookup(k, m.Value); dup {
				x.note(fmt.Sprintf("element %d is appended to key %d twice (history entries %d and %d): list-append needs unique elements; the second append is ignored",
					m.Value, x.keys[k], x.txnIndex(a.refs[prev].txn), x.txnIndex(int32(i))))
				continue
			} else if dense && a.dense[m.Value-a.base] != 0 {
				return false // the element repeats on another key
			}
			r := int32(len(a.refs))
			a.refs = append(a.refs, appendRef{txn: int32(i), key: k, pos: -1})
			if dense {
				a.dense[m.Value-a.base] = r + 1
			} else {
				a.m[keyValue{k, m.Value}] = r
			}
			found := false
			for s := range mine {
				if mine[s].key == k {
					a.refs[mine[s].ref].inter = true
					mine[s].ref, found = r, true
					break
				}
			}
			if !found {
				mine = append(mine, last{k, r})
			}
		}
	}
	return true
}
