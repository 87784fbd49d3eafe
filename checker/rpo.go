package checker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// syncWaitWarning is how PostgreSQL words a commit acknowledged after its
// wait for the synchronous standbys was cancelled.
const syncWaitWarning = "canceling wait for synchronous replication"

// ackedWithWarning reports whether a completion carried the sync-wait warning.
func ackedWithWarning(op *results.Op) bool {
	return strings.Contains(strings.ToLower(op.Warning), syncWaitWarning)
}

// CheckRPO checks that every acknowledged write (register writes and cas,
// set adds, bank transfers) is in the final state of the cluster: the final
// reads on the node that was primary at the end (opts.FinalPrimary, or what
// the nemesis recorded). Without final reads it cannot judge lost writes and
// says Unknown, unless it proved an anomaly anyway (an unexpected value).
func CheckRPO(ctx context.Context, ops []results.Op, opts Options) Check {
	h := index(ops)
	rt := h.roleTimeline()
	return checkRPO(ctx, h, indexRegister(h), opts, newDocContext(h, rt, opts.Settings), newAnomalySet(h))
}

// rpoAcc gathers the findings of every workload.
type rpoAcc struct {
	h    *history
	res  *RPOResult
	lost []call
	// unexpected are reads (or final reads) of values no write produced.
	unexpected []callPair
	// vanished are reads of values the final state lacks, and failed the
	// fail writes whose effect was read or is in the final state; each
	// with the write (or the read) that explains it.
	vanished, failed []callPair
	unjudged         []string // why a part could not be judged
	// divergent are the final reads that differ from the primary's.
	divergent []step
}

// callPair is an anomalous operation and the one that explains it: a read
// and the write of what it read, or a failed write and what showed it (a
// client operation, or a final read).
type callPair struct {
	op, other call
	hasOther  bool
	final     *step
	noOp      bool // only the final read is evidence (op is unset)
}

func (a *rpoAcc) ack(warned bool) {
	a.res.Acknowledged++
	if warned {
		a.res.AckedWithWarning++
	}
}

func checkRPO(ctx context.Context, h *history, ri *regIndex, opts Options, dc *docContext, an *anomalySet) Check {
	start := time.Now()
	chk := Check{Name: NameRPO}
	a := &rpoAcc{h: h, res: &RPOResult{}}
	chk.RPO = a.res
	finals := h.finals()
	primary := h.finalPrimary(opts.FinalPrimary)
	present := h.workloads()
	if present[results.WorkloadRegister] {
		a.register(ri, finals[results.WorkloadRegister], primary)
	}
	if present[results.WorkloadSet] && ctx.Err() == nil {
		a.set(finals[results.WorkloadSet], primary)
	}
	if present[results.WorkloadBank] && ctx.Err() == nil {
		a.bank(finals[results.WorkloadBank], primary)
	}
	if ctx.Err() != nil {
		a.unjudged = append(a.unjudged, fmt.Sprintf("stopped: %v", ctx.Err()))
	}
	res := a.res
	byOrder := func(cs []call) []call {
		slices.SortFunc(cs, func(x, y call) int { return int(x.inv - y.inv) })
		return cs
	}
	res.LostCount, res.UnexpectedCount, res.VanishedCount = len(a.lost), len(a.unexpected), len(a.vanished)
	for _, c := range byOrder(a.lost) {
		if len(res.Lost) < maxListed {
			res.Lost = append(res.Lost, h.ref(c))
		}
		if c.warned() && len(res.LostWithWarning) < maxListed {
			res.LostWithWarning = append(res.LostWithWarning, h.ref(c))
		}
	}
	for _, p := range a.unexpected[:min(len(a.unexpected), maxListed)] {
		res.Unexpected = append(res.Unexpected, h.pairRefs(p)[0])
	}
	slices.SortFunc(a.vanished, func(x, y callPair) int { return int(x.op.inv - y.op.inv) })
	for _, p := range a.vanished[:min(len(a.vanished), maxListed)] {
		res.Vanished = append(res.Vanished, h.ref(p.op))
	}
	res.FailedPresentCount = len(a.failed)
	a.emit(dc, an)
	res.Evidence = h.lostEvidence(a.lost)
	slices.Sort(res.FinalNodes)
	res.FinalNodes = slices.Compact(res.FinalNodes)
	slices.Sort(res.Divergent)
	res.Divergent = slices.Compact(res.Divergent)

	var found []string
	if res.LostCount > 0 {
		s := fmt.Sprintf("%d of %d acknowledged writes are missing from the final state", res.LostCount, res.Acknowledged)
		if n := len(res.LostWithWarning); n > 0 {
			s += fmt.Sprintf(" (%d of them acknowledged with the sync-wait warning)", n)
		}
		found = append(found, s)
	}
	if res.VanishedCount > 0 {
		found = append(found, fmt.Sprintf("%d reads saw a value that is absent from the final state", res.VanishedCount))
	}
	if res.UnexpectedCount > 0 {
		found = append(found, fmt.Sprintf("%d reads returned a value no write produced", res.UnexpectedCount))
	}
	if len(a.failed) > 0 {
		found = append(found, fmt.Sprintf("%d writes recorded as failed took effect", len(a.failed)))
	}
	if len(res.Divergent) > 0 {
		found = append(found, fmt.Sprintf("the final state of %s differs from the primary's", strings.Join(res.Divergent, ", ")))
	}
	switch {
	case len(found) > 0:
		chk.Verdict = Invalid
		chk.Summary = strings.Join(found, "; ")
		if len(a.unjudged) > 0 {
			chk.Summary += "; not judged: " + strings.Join(a.unjudged, "; ")
		}
	case len(a.unjudged) > 0:
		chk.Verdict = Unknown
		chk.Error = strings.Join(a.unjudged, "; ")
		chk.Summary = fmt.Sprintf("unknown: %s (%d acknowledged writes not judged)", chk.Error, res.Acknowledged)
	default:
		chk.Verdict = Valid
		chk.Summary = fmt.Sprintf("all %d acknowledged writes are in the final state on %s (%d acknowledged with the sync-wait warning; %d info writes recovered)",
			res.Acknowledged, strings.Join(res.FinalNodes, ", "), res.AckedWithWarning, res.Recovered)
	}
	chk.ElapsedNS = time.Since(start).Nanoseconds()
	return chk
}

// workloads names the workloads present in the history.
func (h *history) workloads() map[string]bool { return h.workloadNames }

// finalNode picks the node whose final read is the workload's final state
// and records it; when there is none it records why what cannot be judged
// and returns "".
func (a *rpoAcc) finalNode(fs finalState, primary, workload, what string) string {
	node := pickFinal(fs, primary)
	switch {
	case node != "":
		a.res.FinalNodes = append(a.res.FinalNodes, node)
	case len(fs) == 0:
		a.unjudged = append(a.unjudged, fmt.Sprintf("%s: no final read (the run did not settle), so lost %s cannot be judged", workload, what))
	default:
		a.unjudged = append(a.unjudged, fmt.Sprintf("%s: no final read on the primary %q", workload, primary))
	}
	return node
}

// judgeWrite judges one write against the final state: an ok write whose
// effect is missing is lost, an info write whose effect is there was
// recovered.
func (a *rpoAcc) judgeWrite(c call, in bool) {
	switch {
	case c.typ == tOK && !in:
		a.lost = append(a.lost, c)
	case c.typ == tInfo && in:
		a.res.Recovered++
	}
}

// register: an acknowledged write is lost when the final value of its key
// was certainly older than it (written or read before the write was
// invoked): the final state went back behind it.
func (a *rpoAcc) register(ri *regIndex, fs finalState, primary string) {
	h := a.h
	for _, ops := range ri.byKey {
		for i := range ops {
			op := &ops[i]
			switch {
			case !op.ok():
			case op.kind != opRead:
				a.ack(op.warned)
			case op.hasValue:
				if _, known := ri.eff(op.value); !known {
					a.unexpected = append(a.unexpected, callPair{op: h.clients[op.call]})
				}
			}
		}
	}
	node := a.finalNode(fs, primary, "register", "writes")
	if node == "" {
		return
	}
	final := map[string]finalRead{}
	for _, f := range fs[node] {
		if f.op.Value != nil {
			final[h.special[f.s.inv].Key] = f
		}
	}
	for _, other := range sortedNodes(fs) {
		if other == node {
			continue
		}
		for _, f := range fs[other] {
			p, ok := final[h.special[f.s.inv].Key]
			if f.op.Value != nil && (!ok || *p.op.Value != *f.op.Value) {
				a.res.Divergent = append(a.res.Divergent, other)
				a.divergent = append(a.divergent, f.s)
				break
			}
		}
	}
	missing := 0
	for k, key := range ri.keys {
		f, ok := final[key]
		if !ok {
			missing++
			continue
		}
		fv := *f.op.Value
		existed, known := ri.eff(fv)
		if !known {
			fs := f.s
			a.unexpected = append(a.unexpected, callPair{final: &fs, noOp: true})
			continue
		}
		ops := ri.byKey[k]
		for i := range ops {
			op := &ops[i]
			if !op.hasValue {
				continue
			}
			switch {
			case op.kind == opRead && op.ok():
				// A read of a value certainly newer than the final one:
				// the value it saw was lost later.
				if vi := ri.vals.get(op.value); op.value != fv && vi.writer >= 0 && ri.at(vi.writer).invT > existed {
					a.vanished = append(a.vanished, callPair{op: h.clients[op.call], other: h.clients[ri.at(vi.writer).call], hasOther: true})
				}
			case op.kind == opRead:
			case op.ok():
				if op.invT > existed && op.value != fv {
					a.lost = append(a.lost, h.clients[op.call])
				}
			case op.typ == tInfo && op.value == fv:
				a.res.Recovered++
			}
		}
	}
	if missing > 0 {
		a.unjudged = append(a.unjudged, fmt.Sprintf("register: %d keys have no final read on %s", missing, node))
	}
	a.registerFailed(ri, final)
}

// registerFailed finds fail writes and cas whose value was observed (by an
// ok read, an ok cas expecting it) or is a key's final value.
func (a *rpoAcc) registerFailed(ri *regIndex, final map[string]finalRead) {
	h := a.h
	for k, ops := range ri.byKey {
		f, hasFinal := final[ri.keys[k]]
		for i := range ops {
			w := &ops[i]
			if w.kind == opRead || w.typ != tFail || !w.hasValue {
				continue
			}
			if hasFinal && *f.op.Value == w.value {
				fs := f.s
				a.failed = append(a.failed, callPair{op: h.clients[w.call], final: &fs})
				continue
			}
			if ri.vals.get(w.value).seen == never {
				continue
			}
			p := callPair{op: h.clients[w.call]}
			for j := range ops {
				if r := &ops[j]; r.ok() && ((r.kind == opRead && r.value == w.value) || (r.kind == opCAS && r.expect == w.value)) {
					p.other, p.hasOther = h.clients[r.call], true
					break
				}
			}
			a.failed = append(a.failed, p)
		}
	}
}

// setAdds indexes the set's adds densely by element (elements are handed
// out from 1): the client call of each, -1 where none was invoked.
func (h *history) setAdds() []int32 {
	adds := make([]int32, h.maxAdd+1)
	for i := range adds {
		adds[i] = -1
	}
	for i := range h.clients {
		if c := &h.clients[i]; c.wl == wlSet && c.f == fAdd && c.has(flagValue) && c.value >= 1 && c.value <= h.maxAdd {
			adds[c.value] = int32(i)
		}
	}
	return adds
}

// set: every acknowledged add must be in the final set.
func (a *rpoAcc) set(fs finalState, primary string) {
	h := a.h
	adds := h.setAdds()
	for _, ci := range adds {
		if ci >= 0 && h.clients[ci].typ == tOK {
			a.ack(h.clients[ci].warned())
		}
	}
	// The first read (in invoke order) to see each element.
	firstRead := make([]int32, len(adds))
	for i := range firstRead {
		firstRead[i] = -1
	}
	for i := range h.clients {
		c := &h.clients[i]
		if c.wl != wlSet || c.f != fRead || c.typ != tOK || c.side < 0 {
			continue
		}
		r := &h.setReads[c.side]
		unexpected := false
		h.eachPresent(r, func(e int64) {
			if e < 1 || e >= int64(len(adds)) || adds[e] < 0 {
				unexpected = true
				return
			}
			if firstRead[e] < 0 {
				firstRead[e] = int32(i)
			}
		})
		if unexpected {
			a.unexpected = append(a.unexpected, callPair{op: *c})
		}
	}
	node := a.finalNode(fs, primary, "set", "adds")
	if node == "" {
		return
	}
	f := fs[node][len(fs[node])-1]
	final := h.finalSet(f.op)
	unexpected := false
	h.eachPresent(&final, func(e int64) {
		if e < 1 || e >= int64(len(adds)) || adds[e] < 0 {
			unexpected = true
		}
	})
	if unexpected {
		fs := f.s
		a.unexpected = append(a.unexpected, callPair{final: &fs, noOp: true})
	}
	for _, other := range sortedNodes(fs) {
		if other == node {
			continue
		}
		if o := fs[other][len(fs[other])-1]; !sameSet(h.finalSet(o.op), final) {
			a.res.Divergent = append(a.res.Divergent, other)
			a.divergent = append(a.divergent, o.s)
		}
	}
	fstep := f.s
	for e := int64(1); e < int64(len(adds)); e++ {
		ci := adds[e]
		if ci < 0 {
			continue
		}
		c := h.clients[ci]
		in := final.present(e)
		a.judgeWrite(c, in)
		switch {
		case !in && firstRead[e] >= 0:
			a.vanished = append(a.vanished, callPair{op: h.clients[firstRead[e]], other: c, hasOther: true})
		case c.typ == tFail && in:
			a.failed = append(a.failed, callPair{op: c, final: &fstep})
		case c.typ == tFail && firstRead[e] >= 0:
			a.failed = append(a.failed, callPair{op: c, other: h.clients[firstRead[e]], hasOther: true})
		}
	}
}

// finalSet is a final set read as a range over every element added.
func (h *history) finalSet(op *results.Op) setReadRec {
	if op.Lo != 0 || op.Hi != 0 {
		return setReadRec{lo: op.Lo, hi: op.Hi, missing: op.Missing, extra: op.Values}
	}
	return wholeRead(op.Values, max(h.maxAdd, slices.Max(append([]int64{0}, op.Values...))))
}

// eachPresent calls fn for every element a set read saw.
func (h *history) eachPresent(r *setReadRec, fn func(e int64)) {
	j := 0
	for e := r.lo; e <= r.hi; e++ {
		for j < len(r.missing) && r.missing[j] < e {
			j++
		}
		if j < len(r.missing) && r.missing[j] == e {
			continue
		}
		fn(e)
	}
	for _, e := range r.extra {
		fn(e)
	}
}

// sameSet reports whether two set reads saw the same elements.
func sameSet(a, b setReadRec) bool {
	if a.lo == b.lo && a.hi == b.hi {
		return slices.Equal(a.missing, b.missing) && slices.Equal(a.extra, b.extra)
	}
	lo, hi := min(a.lo, b.lo), max(a.hi, b.hi)
	for e := lo; e <= hi; e++ {
		if a.present(e) != b.present(e) {
			return false
		}
	}
	return true
}

// bank: every acknowledged transfer must be in the final transfer log.
func (a *rpoAcc) bank(fs finalState, primary string) {
	h := a.h
	transfers := bankTransfers(h)
	for _, c := range transfers {
		if c.typ == tOK {
			a.ack(c.warned())
		}
	}
	node := a.finalNode(fs, primary, "bank", "transfers")
	if node == "" {
		return
	}
	f := fs[node][len(fs[node])-1]
	ids := make(map[int64]struct{}, len(f.op.IDs))
	for _, id := range f.op.IDs {
		ids[id] = struct{}{}
		if _, ok := transfers[id]; !ok {
			fs := f.s
			a.unexpected = append(a.unexpected, callPair{final: &fs, noOp: true})
			break
		}
	}
	for _, other := range sortedNodes(fs) {
		if other == node {
			continue
		}
		o := fs[other][len(fs[other])-1]
		if !slices.Equal(o.op.Values, f.op.Values) || !sameMembers(o.op.IDs, ids) {
			a.res.Divergent = append(a.res.Divergent, other)
			a.divergent = append(a.divergent, o.s)
		}
	}
	fstep := f.s
	for id, c := range transfers {
		_, in := ids[id]
		a.judgeWrite(c, in)
		if in && c.typ == tFail {
			a.failed = append(a.failed, callPair{op: c, final: &fstep})
		}
	}
}

// sameMembers reports whether vals holds exactly the members of set.
func sameMembers(vals []int64, set map[int64]struct{}) bool {
	if len(vals) != len(set) {
		return false
	}
	for _, v := range vals {
		if _, ok := set[v]; !ok {
			return false
		}
	}
	return true
}

// bankTransfers maps transfer ids to their operations.
func bankTransfers(h *history) map[int64]call {
	out := map[int64]call{}
	for _, c := range h.clients {
		if c.wl == wlBank && c.f == fTransfer && c.side >= 0 {
			out[c.value] = c
		}
	}
	return out
}

// lostEvidence is, for each fault window in which a lost write was
// acknowledged (the latest window started before the acknowledgement, or the
// first window when none had started), what the nemesis recorded closest
// before that acknowledgement.
func (h *history) lostEvidence(lost []call) map[int]FaultEvidence {
	if len(lost) == 0 || len(h.windows) == 0 {
		return nil
	}
	first := map[int]int64{} // window index -> earliest ack of a lost write in it
	for _, c := range lost {
		t := c.end()
		// Without a window before the acknowledgement, the first one after
		// it (the fault that lost the write) explains it best.
		if w := max(h.latestWindow(t), 0); w < len(h.windows) {
			if old, ok := first[w]; !ok || t < old {
				first[w] = t
			}
		}
	}
	out := map[int]FaultEvidence{}
	for w, t := range first {
		out[h.windows[w].id] = h.faultEvidence(w, t)
	}
	return out
}

// faultEvidence describes window w with the state recorded closest before t
// (or the first recorded after it when none was before).
func (h *history) faultEvidence(w int, t int64) FaultEvidence {
	win := h.windows[w]
	ev := FaultEvidence{ID: win.id, Kind: win.kind, StartNS: win.start, StopNS: win.stop, Targets: win.targets}
	rec := -1
	for _, i := range win.recs {
		if h.special[i].Time <= t || rec < 0 {
			rec = i
		}
	}
	// The primary after the latest step of the window before t.
	for c := range h.nemesisSteps() {
		op := h.stepOp(c)
		if op.Fault != nil && op.Fault.ID == win.id && op.Fault.Primary != "" && (ev.Primary == "" || op.Time <= t) {
			ev.Primary = op.Fault.Primary
		}
		if op.Fault != nil && op.Fault.ID == win.id && op.Fault.Detail != "" && ev.Detail == "" {
			ev.Detail = op.Fault.Detail
		}
	}
	if rec < 0 {
		return ev
	}
	f := h.special[rec].Fault
	ev.Nodes = nodeLSNs(f)
	for _, r := range f.Replication {
		s := fmt.Sprintf("%s=%s/%s", r.Name, r.State, r.SyncState)
		if r.ReplyAgeMS > 0 {
			s += fmt.Sprintf(" (last reply %d ms ago)", r.ReplyAgeMS)
		}
		ev.SyncStates = append(ev.SyncStates, s)
	}
	return ev
}

// nodeLSNs is every node's role and LSNs in a nemesis record.
func nodeLSNs(f *results.Fault) []NodeLSN {
	var out []NodeLSN
	for _, n := range f.Nodes {
		nl := NodeLSN{Node: n.Node, Role: n.Role, Timeline: n.Timeline, Error: n.Error}
		if n.CurrentLSN != "" {
			nl.LSN = n.CurrentLSN
		} else {
			nl.LSN, nl.ReplayLSN = n.ReceiveLSN, n.ReplayLSN
		}
		out = append(out, nl)
	}
	return out
}

// keyOfCall names what a call acted on: its register key, or its workload.
func (h *history) keyOfCall(c *call) string {
	if c.key >= 0 {
		return h.regKeys[c.key]
	}
	switch c.wl {
	case wlSet:
		return results.WorkloadSet
	case wlBank:
		return results.WorkloadBank
	}
	return ""
}

// pairRefs is the evidence of a pair, the anomalous operation first.
func (h *history) pairRefs(p callPair) []OpRef {
	var refs []OpRef
	if !p.noOp {
		refs = append(refs, h.ref(p.op))
	}
	if p.hasOther {
		refs = append(refs, h.ref(p.other))
	}
	if p.final != nil {
		refs = append(refs, h.refStep(*p.final))
	}
	return refs
}

// emit adds every finding to an as a named anomaly, judged by dc.
func (a *rpoAcc) emit(dc *docContext, an *anomalySet) {
	h := a.h
	role := func(c *call) (string, string) {
		node := h.nodeName(c)
		return node, dc.rt.roleAt(node, c.invT)
	}
	for _, c := range a.lost {
		kind, doc := KindLostWrite, dc.lostWrite(c.invT, c.compT, false)
		if c.warned() {
			kind, doc = KindLostWarned, dc.lostWrite(c.invT, c.compT, true)
		}
		node, r := role(&c)
		an.add(instance{kind: kind, doc: doc, node: node, role: r, t: c.compT, key: h.keyOfCall(&c),
			example: func() Example {
				return Example{Key: h.keyOfCall(&c), Ops: []OpRef{h.ref(c)},
					Text: fmt.Sprintf("%s acknowledged by %s at %s is not in the final state", describeOp(h, &c), node, fmtNS(c.compT))}
			}})
	}
	for _, p := range a.vanished {
		w := p.other
		doc := dc.vanished(w.invT, w.compT, w.warned() || w.cancelled())
		node, r := role(&p.op)
		an.add(instance{kind: KindVanished, doc: doc, node: node, role: r, t: p.op.invT, key: h.keyOfCall(&p.op),
			example: func() Example {
				return Example{Key: h.keyOfCall(&p.op), Ops: h.pairRefs(p),
					Text: fmt.Sprintf("read on %s (%s) saw what %s (%s) wrote, which the final state lacks", node, r, describeOp(h, &w), typeNames[w.typ])}
			}})
	}
	for _, p := range a.failed {
		node, r := role(&p.op)
		an.add(instance{kind: KindFailedPresent, doc: docFailed, node: node, role: r, t: p.op.invT, key: h.keyOfCall(&p.op),
			example: func() Example {
				return Example{Key: h.keyOfCall(&p.op), Ops: h.pairRefs(p),
					Text: fmt.Sprintf("%s failed with %q, yet its effect was read or is in the final state", describeOp(h, &p.op), h.textAt(p.op.errI))}
			}})
	}
	for _, p := range a.unexpected {
		if p.final != nil {
			s := *p.final
			node := h.stepOp(s).Node
			an.add(instance{kind: KindUnwritten, doc: docUnwritten, node: node, role: roleStandby, t: s.invT, key: h.special[s.inv].Workload,
				example: func() Example {
					return Example{Key: h.special[s.inv].Workload, Ops: []OpRef{h.refStep(s)}, Text: fmt.Sprintf("the final read on %s holds a value no write produced", node)}
				}})
			continue
		}
		c := p.op
		node, r := role(&c)
		an.add(instance{kind: KindUnwritten, doc: docUnwritten, node: node, role: r, t: c.invT, key: h.keyOfCall(&c),
			example: func() Example {
				return Example{Key: h.keyOfCall(&c), Ops: []OpRef{h.ref(c)}, Text: fmt.Sprintf("read on %s returned a value no write produced", node)}
			}})
	}
	for _, s := range a.divergent {
		node := h.stepOp(s).Node
		wl := h.special[s.inv].Workload
		an.add(instance{kind: KindDivergent, doc: docDivergent, node: node, role: roleStandby, t: s.invT, key: wl,
			example: func() Example {
				return Example{Ops: []OpRef{h.refStep(s)}, Text: fmt.Sprintf("the final %s read on %s differs from the primary's", wl, node)}
			}})
	}
}

// describeOp names a client operation in a few words.
func describeOp(h *history, c *call) string {
	f := fName(c.f)
	switch {
	case c.f == fTransfer:
		return fmt.Sprintf("transfer %d", c.value)
	case c.has(flagValue) && c.key >= 0:
		return fmt.Sprintf("%s of %d to %s", f, c.value, h.regKeys[c.key])
	case c.has(flagValue):
		return fmt.Sprintf("%s of %d", f, c.value)
	}
	return f
}
