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
	var hits []staleHit
	var winv, wcomp []int64
	var wflat, sufMin, byComp []int
	for k, ops := range ri.byKey {
		if ctx.Err() != nil {
			chk.Verdict, chk.Error = Unknown, fmt.Sprintf("stopped: %v", ctx.Err())
			chk.Summary = "unknown: " + chk.Error
			return chk
		}
		base := int(ri.offset[k])
		// Acknowledged writes of this key, in invoke order (ops are).
		winv, wcomp, wflat = winv[:0], wcomp[:0], wflat[:0]
		byComp = byComp[:0]
		for i := range ops {
			op := &ops[i]
			if op.kind != opRead && op.ok() {
				winv = append(winv, op.invT)
				wcomp = append(wcomp, op.compT)
				wflat = append(wflat, base+i)
			}
			if op.kind == opRead && op.ok() && op.hasValue {
				byComp = append(byComp, i)
			}
		}
		// sufMin[i]: the write among wflat[i:] acknowledged first.
		sufMin = slices.Grow(sufMin[:0], len(wflat)+1)[:len(wflat)+1]
		sufMin[len(wflat)] = -1
		for i := len(wflat) - 1; i >= 0; i-- {
			sufMin[i] = i
			if j := sufMin[i+1]; j >= 0 && wcomp[j] < wcomp[i] {
				sufMin[i] = j
			}
		}
		slices.SortFunc(byComp, func(a, b int) int { return cmpInt64(ops[a].compT, ops[b].compT) })
		var global orders
		perNode := map[uint8]*nodeWitness{}
		next := 0
		for i := range ops {
			op := &ops[i]
			if op.kind != opRead || !op.ok() || !op.hasValue {
				continue
			}
			// Every read completed before this one began is a witness.
			for ; next < len(byComp) && ops[byComp[next]].compT < op.invT; next++ {
				r := &ops[byComp[next]]
				global.add(ri, r, base+byComp[next])
				nw := perNode[r.node]
				if nw == nil {
					nw = &nodeWitness{}
					perNode[r.node] = nw
				}
				// A step that moved roles since the last witness voids
				// the earlier ones for this node.
				if dc.rt.movedBetween(nw.lastT, r.compT) {
					nw.o = orders{}
				}
				nw.o.add(ri, r, base+byComp[next])
				nw.lastT = r.compT
			}
			node := h.nodes[op.node]
			res.Reads++
			res.ByNode[node]++
			existed, known := ri.eff(op.value)
			if !known {
				continue // an unexpected value: rpo reports it
			}
			role := dc.rt.roleAt(node, op.invT)
			j := sort.Search(len(winv), func(i int) bool { return winv[i] > existed })
			if m := sufMin[j]; m >= 0 && wcomp[m] < op.invT {
				newer := ri.at(wflat[m])
				hits = append(hits, staleHit{read: int(op.call), newer: int(newer.call), staleNS: op.invT - wcomp[m]})
				res.StaleByNode[node]++
				an.add(instance{kind: KindStaleRead, doc: dc.staleRead(node, role, op.invT, h.clients[newer.call]), node: node, role: role,
					t: op.invT, durNS: op.invT - wcomp[m], key: ri.keys[k],
					example: func() Example {
						return Example{Key: ri.keys[k], Ops: []OpRef{h.ref(h.clients[op.call]), h.ref(h.clients[newer.call])},
							Text: fmt.Sprintf("read of %s on %s (%s) returned %d although write %d had been acknowledged %s before the read began",
								ri.keys[k], node, role, op.value, newer.value, fmtNS(op.invT-newer.compT))}
					}})
			}
			var local readWitness
			localOK := false
			if nw := perNode[op.node]; nw != nil && !dc.rt.movedBetween(nw.lastT, op.invT) {
				local, localOK = nw.o.behind(ri, op.value)
			}
			g, globalOK := global.behind(ri, op.value)
			switch {
			case localOK:
				an.add(ri.behindInstance(h, dc, KindNonMonotonic, docNonMonotonic, k, op, local))
			case globalOK && op.primary && dc.rt.movedBetween(ri.at(g.rop).compT, op.invT):
				// The primary went back behind a value read before a
				// failover: the promoted node lacked it, it vanished.
				an.add(ri.behindInstance(h, dc, KindVanished, docVerdict{}, k, op, g))
			case globalOK:
				an.add(ri.behindInstance(h, dc, KindNewThenOld, docVerdict{}, k, op, g))
			}
		}
	}
	res.StaleCount = len(hits)
	if len(hits) > 0 {
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
	if res.StaleCount > 0 {
		chk.Verdict = Invalid
		chk.Summary = fmt.Sprintf("%d of %d reads returned a value older than a write acknowledged before they began (%s); up to %s stale, median %s",
			res.StaleCount, res.Reads, countByNode(res.StaleByNode), fmtNS(res.MaxStaleNS), fmtNS(res.P50StaleNS))
	} else {
		chk.Verdict = Valid
		chk.Summary = fmt.Sprintf("no stale read among %d reads (%s)", res.Reads, countByNode(res.ByNode))
	}
	chk.ElapsedNS = time.Since(start).Nanoseconds()
	return chk
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
