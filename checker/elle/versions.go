package elle

import (
	"slices"
)

// Special values of writerAt.
const (
	noWriter  int32 = -1 // no transaction appended this element to this key
	duplicate int32 = -2 // the element occurs earlier in the same list
)

// indexKeys numbers the keys and records each micro-operation's key.
func (x *analysis) indexKeys() {
	total := 0
	for i := range x.txns {
		total += len(x.txns[i].mops)
	}
	x.mopKey = make([]int32, total)
	x.mopOff = make([]int32, len(x.txns)+1)
	x.keyOf = map[int64]int32{}
	off := int32(0)
	lastK, lastI := int64(0), int32(-1)
	for i := range x.txns {
		x.mopOff[i] = off
		for _, m := range x.txns[i].mops {
			if m.F != "append" && !m.IsRead() {
				x.mopKey[off] = -1 // a function list-append does not know
				off++
				continue
			}
			k := lastI
			if lastI < 0 || m.Key != lastK {
				var ok bool
				if k, ok = x.keyOf[m.Key]; !ok {
					k = int32(len(x.keys))
					x.keyOf[m.Key] = k
					x.keys = append(x.keys, m.Key)
				}
				lastK, lastI = m.Key, k
			}
			x.mopKey[off] = k
			off++
		}
	}
	x.mopOff[len(x.txns)] = off
}

// versionOrders takes, for every key, the longest list any committed
// transaction read as the key's version order, and finds each element's
// writer. Every other read must be a prefix of it (checked later).
func (x *analysis) versionOrders() {
	nk := len(x.keys)
	x.order = make([][]int64, nk)
	x.orderTxn = make([]int32, nk)
	x.writerAt = make([][]int32, nk)
	x.failedAt = make([]int32, nk)
	for i := range x.txns {
		t := &x.txns[i]
		if !t.ok() {
			continue
		}
		for j, m := range t.mops {
			k := x.mopKey[x.mopOff[i]+int32(j)]
			if m.IsRead() && k >= 0 && len(m.Read) > len(x.order[k]) {
				x.order[k], x.orderTxn[k] = m.Read, int32(i)
			}
		}
	}
	for k := range x.order {
		x.failedAt[k] = -1
		w := make([]int32, len(x.order[k]))
		for p, e := range x.order[k] {
			r, ok := x.appends.lookup(int32(k), e)
			switch {
			case !ok:
				w[p] = noWriter
				x.addCase(UnexpectedElement, rawCase{txns: []int32{x.orderTxn[k]}, key: int32(k), elems: []int64{e}, list: x.order[k]})
			case x.appends.refs[r].pos >= 0:
				w[p] = duplicate
				x.addCase(DuplicateElements, rawCase{txns: []int32{x.orderTxn[k]}, key: int32(k), elems: []int64{e}, list: x.order[k]})
			default:
				x.appends.refs[r].pos = int32(p)
				w[p] = x.appends.refs[r].txn
				if x.txns[w[p]].typ == tFail && x.failedAt[k] < 0 {
					x.failedAt[k] = int32(p)
				}
			}
		}
		x.writerAt[k] = w
	}
}

// usable reports whether the writer at a position of an order can carry an
// edge: a transaction that did not fail.
func (x *analysis) usable(w int32) bool { return w >= 0 && x.txns[w].typ != tFail }

// wwEdges links consecutive versions of every key: the writer of each
// element precedes the writer of the next one.
func (x *analysis) wwEdges() {
	for k := range x.writerAt {
		prev := int32(-1)
		for _, w := range x.writerAt[k] {
			if !x.usable(w) {
				continue
			}
			if prev >= 0 && prev != w {
				x.edges.add(prev, w, bWW)
			}
			prev = w
		}
	}
}

// keyTouch is what a transaction did to one key so far: for the internal
// check, the list it knows (after a read) and the elements it appended
// since.
type keyTouch struct {
	key      int32
	known    bool
	list     []int64
	appended []int64
}

// readsAndInternal walks every committed transaction's micro-operations:
// it checks each read against the transaction's own earlier reads and
// appends (internal) and against the key's version order (incompatible
// order), and judges the external reads (the first access of a key in the
// transaction, when it is a read): aborted and intermediate reads, and
// their write-read and read-write edges.
func (x *analysis) readsAndInternal() {
	tt := &touches{}
	for i := range x.txns {
		if i&0xffff == 0 && x.budget.exceeded() {
			return
		}
		t := &x.txns[i]
		if !t.ok() {
			continue
		}
		tt.reset(len(t.mops))
		for j, m := range t.mops {
			k := x.mopKey[x.mopOff[i]+int32(j)]
			if k < 0 {
				continue
			}
			kt, first := tt.touch(k)
			if !m.IsRead() {
				kt.appended = append(kt.appended, m.Value)
				continue
			}
			if m.Read == nil {
				continue // an ok read without a result says nothing
			}
			if first {
				x.externalRead(int32(i), k, m.Read)
			} else {
				if !x.consistent(kt, m.Read) {
					x.addCase(Internal, rawCase{txns: []int32{int32(i)}, key: k, list: m.Read, expect: expected(kt), suffixOnly: !kt.known})
				}
				// A later read is a state of the database too.
				x.checkPrefix(int32(i), k, m.Read)
			}
			kt.known, kt.list, kt.appended = true, m.Read, kt.appended[:0]
		}
	}
}

// touches are one transaction's records of the keys it accessed, reused
// from one transaction to the next; a transaction of many keys (a final
// read) finds its records through a map.
type touches struct {
	ts  []keyTouch
	pos map[int32]int
}

const touchScan = 16 // up to this many keys, a linear scan is faster

func (tt *touches) reset(mops int) {
	tt.ts = tt.ts[:0]
	if mops > touchScan {
		tt.pos = make(map[int32]int, mops)
	} else {
		tt.pos = nil
	}
}

// touch returns the transaction's record of key k, adding it (first) when
// this is the first access.
func (tt *touches) touch(k int32) (kt *keyTouch, first bool) {
	if tt.pos != nil {
		if u, ok := tt.pos[k]; ok {
			return &tt.ts[u], false
		}
		tt.pos[k] = len(tt.ts)
	} else {
		for u := range tt.ts {
			if tt.ts[u].key == k {
				return &tt.ts[u], false
			}
		}
	}
	if len(tt.ts) < cap(tt.ts) {
		tt.ts = tt.ts[:len(tt.ts)+1]
		kt = &tt.ts[len(tt.ts)-1]
		kt.key, kt.known, kt.list, kt.appended = k, false, nil, kt.appended[:0]
	} else {
		tt.ts = append(tt.ts, keyTouch{key: k})
		kt = &tt.ts[len(tt.ts)-1]
	}
	return kt, true
}

// consistent reports whether read fits what the transaction knew of the key.
func (x *analysis) consistent(kt *keyTouch, read []int64) bool {
	if kt.known {
		return len(read) == len(kt.list)+len(kt.appended) &&
			slices.Equal(read[:len(kt.list)], kt.list) && slices.Equal(read[len(kt.list):], kt.appended)
	}
	n := len(kt.appended)
	return len(read) >= n && slices.Equal(read[len(read)-n:], kt.appended)
}

// expected is what a consistent read would have returned (with
// suffixOnly: the elements it would have ended with).
func expected(kt *keyTouch) []int64 {
	if !kt.known {
		return slices.Clone(kt.appended)
	}
	return append(slices.Clone(kt.list), kt.appended...)
}

// isPrefix reports whether read is a prefix of key k's version order.
func (x *analysis) isPrefix(k int32, read []int64) bool {
	o := x.order[k]
	if len(read) > len(o) {
		return false
	}
	if len(read) == 0 || &read[0] == &o[0] {
		return true // the same list, or a prefix sharing its memory
	}
	return slices.Equal(read, o[:len(read)])
}

// checkPrefix records an incompatible order when read is not a prefix of
// the key's version order.
func (x *analysis) checkPrefix(t, k int32, read []int64) {
	if x.isPrefix(k, read) {
		return
	}
	x.addCase(IncompatibleOrder, rawCase{txns: []int32{t, x.orderTxn[k]}, key: k, list: read, other: x.order[k]})
}

// externalRead judges the first read of key k by committed transaction t
// and adds its edges: write-read from the writer of the last element it
// saw, read-write to the writer of the next element in the order.
func (x *analysis) externalRead(t, k int32, read []int64) {
	if !x.isPrefix(k, read) {
		x.checkPrefix(t, k, read)
		x.incompatibleRead(t, k, read)
		return
	}
	n := int32(len(read))
	w := x.writerAt[k]
	if f := x.failedAt[k]; f >= 0 && f < n {
		x.addCase(G1a, rawCase{txns: []int32{t, w[f]}, key: k, elems: []int64{read[f]}, list: read})
	}
	if n > 0 {
		last := w[n-1]
		if x.usable(last) && last != t {
			x.edges.add(last, t, bWR)
			if r, ok := x.appends.lookup(k, read[n-1]); ok && x.appends.refs[r].inter {
				x.addCase(G1b, rawCase{txns: []int32{t, last}, key: k, elems: []int64{read[n-1]}, list: read})
			}
		}
	}
	for p := n; p < int32(len(w)); p++ {
		if x.usable(w[p]) {
			if w[p] != t {
				x.edges.add(t, w[p], bRW)
			}
			break
		}
	}
}

// incompatibleRead still learns what it can from a read that does not fit
// the order: who wrote its last element (write-read), and whether that
// writer failed or went on appending.
func (x *analysis) incompatibleRead(t, k int32, read []int64) {
	if len(read) == 0 {
		return
	}
	for _, e := range read {
		if r, ok := x.appends.lookup(k, e); ok && x.txns[x.appends.refs[r].txn].typ == tFail {
			x.addCase(G1a, rawCase{txns: []int32{t, x.appends.refs[r].txn}, key: k, elems: []int64{e}, list: read})
			break
		}
	}
	e := read[len(read)-1]
	r, ok := x.appends.lookup(k, e)
	if !ok {
		x.addCase(UnexpectedElement, rawCase{txns: []int32{t}, key: k, elems: []int64{e}, list: read})
		return
	}
	w := x.appends.refs[r].txn
	if x.usable(w) && w != t {
		x.edges.add(w, t, bWR)
		if x.appends.refs[r].inter {
			x.addCase(G1b, rawCase{txns: []int32{t, w}, key: k, elems: []int64{e}, list: read})
		}
	}
}
