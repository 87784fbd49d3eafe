package checker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// maxListed bounds the anomalies listed one by one in a result.
const maxListed = 100

// CheckStaleReads finds register reads that returned a value older than a
// write acknowledged before the read began. A write w is newer than the
// value v read when w was invoked after v certainly existed (v's write was
// acknowledged or v had been read); only acknowledged (ok) writes and cas
// count as w. Reads on every node are examined and counted by node, so the
// result shows whether the standbys or the primary served them.
func CheckStaleReads(ctx context.Context, ops []results.Op) Check {
	h := index(ops)
	ri := indexRegister(h)
	rt := h.roleTimeline()
	return checkReads(ctx, h, ri, newDocContext(h, rt, nil), newAnomalySet(h))
}

type staleHit struct {
	read, newer int // indices into history.clients
	staleNS     int64
}

// readWitness is an earlier read whose value a later read went behind.
// Its value is certainly newer than a value u when key is later than u
// certainly existed: by the commit order (key is the invoke of the witness
// value's write, compared with when u existed anywhere) or by the
// primary's visible order (key is the witness read's own invoke, for a read
// the primary served, compared with when the primary showed u: a
// linearizable read that began after u was visible and returned another
// value proves that value newer).
type readWitness struct {
	key   int64
	value int64
	rop   int // index into ri.flat
	valid bool
}

// witnesses keeps the best witness and the best one of another value, so
// that a read of the best one's own value still finds a witness.
type witnesses struct{ best, other readWitness }

func (w *witnesses) add(x readWitness) {
	switch {
	case !w.best.valid || x.key > w.best.key:
		if w.best.valid && w.best.value != x.value {
			w.other = w.best
		}
		w.best = x
	case x.value != w.best.value && (!w.other.valid || x.key > w.other.key):
		w.other = x
	}
}

// against is the best witness whose value is not v.
func (w *witnesses) against(v int64) readWitness {
	if w.best.valid && w.best.value != v {
		return w.best
	}
	return w.other
}

// orders is the witnesses by both orders: commit (byWrite) and the
// primary's visible order (byPrimary).
type orders struct{ byWrite, byPrimary witnesses }

func (o *orders) add(ri *regIndex, r *rop, flat int) {
	o.byWrite.add(readWitness{key: ri.writeInvoke(r.value), value: r.value, rop: flat, valid: true})
	if r.primary {
		o.byPrimary.add(readWitness{key: r.invT, value: r.value, rop: flat, valid: true})
	}
}

// behind returns a witness that proves value v older, if any.
func (o *orders) behind(ri *regIndex, v int64) (readWitness, bool) {
	if existed, known := ri.eff(v); known {
		if w := o.byWrite.against(v); w.valid && w.key > existed {
			return w, true
		}
	}
	if existed, known := ri.effP(v); known {
		if w := o.byPrimary.against(v); w.valid && w.key > existed {
			return w, true
		}
	}
	return readWitness{}, false
}

// nodeWitness is the witnesses among the reads on one node completed
// since the last step that moved roles.
type nodeWitness struct {
	o     orders
	lastT int64
}

// checkReads judges every ok register read: stale (older than a write
// acknowledged before it began), non-monotonic (older than a read that
// ended before it on the same node, with no failover between), vanished
// (a read of the primary older than a read before a failover: the value
// that read saw was lost) and new-then-old (older than a read that ended
// before it, elsewhere). The value v2 is older than v1 when v1's write was invoked
// after v2 certainly existed. It fills the stale-read check and adds every
// instance to an.
func checkReads(ctx context.Context, h *history, ri *regIndex, dc *docContext, an *anomalySet) Check {
	start := time.Now()
	chk := Check{Name: NameStaleRead}
	res := &StaleReadResult{ByNode: map[string]int{}, StaleByNode: map[string]int{}}
	chk.StaleRead = res
	kr := &keyReads{h: h, ri: ri, dc: dc, an: an, res: res}
	for k := range ri.byKey {
		if ctx.Err() != nil {
			chk.Verdict, chk.Error = Unknown, fmt.Sprintf("stopped: %v", ctx.Err())
			chk.Summary = "unknown: " + chk.Error
			return chk
		}
		kr.judgeKey(k)
	}
	kr.finish()
	if res.StaleCount > 0 {
		chk.Verdict = Invalid
		chk.Summary = fmt.Sprintf("%d of %d register reads returned a value older than a write acknowledged before they began (%s); up to %s stale, median %s",
			res.StaleCount, res.Reads, countByNode(res.StaleByNode), fmtNS(res.MaxStaleNS), fmtNS(res.P50StaleNS))
	} else {
		chk.Verdict = Valid
		chk.Summary = fmt.Sprintf("no stale read among %d register reads (%s)", res.Reads, countByNode(res.ByNode))
	}
	chk.ElapsedNS = time.Since(start).Nanoseconds()
	return chk
}

// keyReads judges the reads of one register key after another; its slices
// are reused from key to key.
type keyReads struct {
	h   *history
	ri  *regIndex
	dc  *docContext
	an  *anomalySet
	res *StaleReadResult

	hits []staleHit
	// The key's acknowledged writes in invoke order: their invoke and
	// completion times and their index into ri.flat; sufMin[i] is the one
	// among them from i on acknowledged first.
	winv, wcomp   []int64
	wflat, sufMin []int
	byComp        []int // the key's ok reads with a value, by completion

	// The witnesses: every read completed before the current one began,
	// over all nodes and per node.
	global  orders
	perNode map[uint8]*nodeWitness
	next    int
}

// judgeKey judges every ok read of key k.
func (kr *keyReads) judgeKey(k int) {
	ops, base := kr.ri.byKey[k], int(kr.ri.offset[k])
	kr.indexWrites(ops, base)
	kr.global, kr.perNode, kr.next = orders{}, map[uint8]*nodeWitness{}, 0
	for i := range ops {
		op := &ops[i]
		if op.kind != opRead || !op.ok() || !op.hasValue {
			continue
		}
		kr.witnessesBefore(ops, base, op.invT)
		node := kr.h.nodes[op.node]
		kr.res.Reads++
		kr.res.ByNode[node]++
		existed, known := kr.ri.eff(op.value)
		if !known {
			continue // an unexpected value: rpo reports it
		}
		kr.stale(k, op, node, existed)
		kr.behind(k, op)
	}
}

// indexWrites fills the key's write arrays and its reads by completion.
func (kr *keyReads) indexWrites(ops []rop, base int) {
	kr.winv, kr.wcomp, kr.wflat, kr.byComp = kr.winv[:0], kr.wcomp[:0], kr.wflat[:0], kr.byComp[:0]
	for i := range ops {
		op := &ops[i]
		if op.kind != opRead && op.ok() {
			kr.winv = append(kr.winv, op.invT)
			kr.wcomp = append(kr.wcomp, op.compT)
			kr.wflat = append(kr.wflat, base+i)
		}
		if op.kind == opRead && op.ok() && op.hasValue {
			kr.byComp = append(kr.byComp, i)
		}
	}
	n := len(kr.wflat)
	kr.sufMin = slices.Grow(kr.sufMin[:0], n+1)[:n+1]
	kr.sufMin[n] = -1
	for i := n - 1; i >= 0; i-- {
		kr.sufMin[i] = i
		if j := kr.sufMin[i+1]; j >= 0 && kr.wcomp[j] < kr.wcomp[i] {
			kr.sufMin[i] = j
		}
	}
	slices.SortFunc(kr.byComp, func(a, b int) int { return cmpInt64(ops[a].compT, ops[b].compT) })
}

// witnessesBefore adds every read completed before t to the witnesses.
func (kr *keyReads) witnessesBefore(ops []rop, base int, t int64) {
	for ; kr.next < len(kr.byComp) && ops[kr.byComp[kr.next]].compT < t; kr.next++ {
		r, flat := &ops[kr.byComp[kr.next]], base+kr.byComp[kr.next]
		kr.global.add(kr.ri, r, flat)
		nw := kr.perNode[r.node]
		if nw == nil {
			nw = &nodeWitness{}
			kr.perNode[r.node] = nw
		}
		// A step that moved roles since the last witness voids the
		// earlier ones for this node.
		if kr.dc.rt.movedBetween(nw.lastT, r.compT) {
			nw.o = orders{}
		}
		nw.o.add(kr.ri, r, flat)
		nw.lastT = r.compT
	}
}

// stale records op (of key k, on node) as a stale read when a write
// invoked after its value existed was acknowledged before op began.
func (kr *keyReads) stale(k int, op *rop, node string, existed int64) {
	h, ri := kr.h, kr.ri
	j := sort.Search(len(kr.winv), func(i int) bool { return kr.winv[i] > existed })
	m := kr.sufMin[j]
	if m < 0 || kr.wcomp[m] >= op.invT {
		return
	}
	role := kr.dc.rt.roleAt(node, op.invT)
	newer := ri.at(kr.wflat[m])
	staleNS := op.invT - kr.wcomp[m]
	kr.hits = append(kr.hits, staleHit{read: int(op.call), newer: int(newer.call), staleNS: staleNS})
	kr.res.StaleByNode[node]++
	kr.an.add(instance{kind: KindStaleRead, doc: kr.dc.staleRead(node, role, op.invT, h.clients[newer.call]), node: node, role: role,
		t: op.invT, durNS: staleNS, key: ri.keys[k], workload: results.WorkloadRegister,
		example: func() Example {
			return Example{Key: ri.keys[k], Ops: []OpRef{h.ref(h.clients[op.call]), h.ref(h.clients[newer.call])},
				Text: fmt.Sprintf("read of %s on %s (%s) returned %d although write %d had been acknowledged %s before the read began",
					ri.keys[k], node, role, op.value, newer.value, fmtNS(op.invT-newer.compT))}
		}})
}

// behind records op (of key k) as non-monotonic, vanished or new-then-old
// when an earlier read's value proves op's older.
func (kr *keyReads) behind(k int, op *rop) {
	ri, dc := kr.ri, kr.dc
	var local readWitness
	localOK := false
	if nw := kr.perNode[op.node]; nw != nil && !dc.rt.movedBetween(nw.lastT, op.invT) {
		local, localOK = nw.o.behind(ri, op.value)
	}
	g, globalOK := kr.global.behind(ri, op.value)
	switch {
	case localOK:
		kr.an.add(ri.behindInstance(kr.h, dc, KindNonMonotonic, docNonMonotonic, k, op, local))
	case globalOK && op.primary && dc.rt.promotedBetween(ri.at(g.rop).compT, op.invT):
		// The primary went back behind a value read before a failover:
		// the promoted node lacked it, it vanished. Without a change of
		// primary in between (a rejoin or re-pointing of standbys only),
		// it is new-then-old: a standby replays a commit before the
		// primary shows it.
		kr.an.add(ri.behindInstance(kr.h, dc, KindVanished, docVerdict{}, k, op, g))
	case globalOK:
		kr.an.add(ri.behindInstance(kr.h, dc, KindNewThenOld, docVerdict{}, k, op, g))
	}
}

// finish fills the result's stale-read counts, durations and examples.
func (kr *keyReads) finish() {
	res, hits, h := kr.res, kr.hits, kr.h
	res.StaleCount = len(hits)
	if len(hits) == 0 {
		return
	}
	ns := make([]int64, len(hits))
	for i, s := range hits {
		ns[i] = s.staleNS
	}
	slices.Sort(ns)
	res.MaxStaleNS, res.P50StaleNS = ns[len(ns)-1], ns[len(ns)/2]
	sort.Slice(hits, func(a, b int) bool { return hits[a].read < hits[b].read })
	for _, s := range hits[:min(len(hits), maxListed)] {
		res.Stale = append(res.Stale, StaleRead{Read: h.ref(h.clients[s.read]), Newer: h.ref(h.clients[s.newer]), StaleNS: s.staleNS})
	}
}

// behindInstance is a read op (of key k) that returned an older value than
// the read w had seen: kind is non-monotonic (same node), vanished (the
// primary, across a failover) or new-then-old, judged by doc, or by the
// rules of its kind when doc is zero.
func (ri *regIndex) behindInstance(h *history, dc *docContext, kind Kind, doc docVerdict, k int, op *rop, w readWitness) instance {
	node := h.nodes[op.node]
	role := dc.rt.roleAt(node, op.invT)
	earlier := ri.at(w.rop)
	enode := h.nodes[earlier.node]
	erole := dc.rt.roleAt(enode, earlier.invT)
	if doc == (docVerdict{}) {
		wr := ri.writerOf(earlier.value)
		cancelled, a, b := false, earlier.invT, earlier.compT
		if wr != nil {
			cancelled, a, b = wr.warned || wr.cancelled, wr.invT, wr.compT
		}
		if kind == KindVanished {
			doc = dc.vanished(a, b, cancelled)
		} else {
			doc = dc.newThenOld(erole, node, role, op.invT, a, b, cancelled)
		}
	}
	return instance{kind: kind, doc: doc, node: node, role: role, t: op.invT, key: ri.keys[k],
		example: func() Example {
			refs := []OpRef{h.ref(h.clients[op.call]), h.ref(h.clients[earlier.call])}
			if wr := ri.writerOf(earlier.value); wr != nil {
				refs = append(refs, h.ref(h.clients[wr.call]))
			}
			return Example{Key: ri.keys[k], Ops: refs,
				Text: fmt.Sprintf("read of %s on %s (%s) returned %d after a read on %s (%s) that ended %s before it began had returned the newer %d",
					ri.keys[k], node, role, op.value, enode, erole, fmtNS(op.invT-earlier.compT), earlier.value)}
		}}
}

// writeInvoke is the invoke time of the write of register value v, the
// smallest time for the initial value and values no write produced.
func (ri *regIndex) writeInvoke(v int64) int64 {
	if w := ri.writerOf(v); w != nil {
		return w.invT
	}
	return math.MinInt64
}

// writerOf is the write or cas that wrote v, nil for the initial value and
// values no write produced.
func (ri *regIndex) writerOf(v int64) *rop {
	if v == 0 {
		return nil
	}
	vi := ri.vals.get(v)
	if vi.writer < 0 {
		return nil
	}
	return ri.at(vi.writer)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// countByNode renders "n2: 3, n3: 1" in node order.
func countByNode(m map[string]int) string {
	nodes := make([]string, 0, len(m))
	for n := range m {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	s := ""
	for i, n := range nodes {
		if i > 0 {
			s += ", "
		}
		name := n
		if name == "" {
			name = "unknown node"
		}
		s += fmt.Sprintf("%s: %d", name, m[n])
	}
	return s
}

// fmtNS renders a duration in ns for a sentence.
func fmtNS(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.String()
}
