package elle

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/strongcheck/strongcheck/results"
)

// maxCases bounds the cases rendered per kind (the count has them all).
const maxCases = 10

// rawCase is an anomaly as the analysis found it, before it is put in words.
type rawCase struct {
	txns  []int32 // T1, T2, ...
	key   int32   // -1: none
	elems []int64 // the elements it is about
	list  []int64 // the list read
	other []int64 // incompatible order: the key's version order
	// internal: what the transaction should have read (suffixOnly: the
	// elements its read should have ended with).
	expect     []int64
	suffixOnly bool
	cycle      *found
}

// collected are the cases of one kind.
type collected struct {
	count   int
	standby int // cases with a transaction a standby served
	cases   []rawCase
}

// onStandby reports whether one of txns began on a node that was then a
// standby (a committed append proves its node was the primary).
func (x *analysis) onStandby(txns []int32) bool {
	for _, t := range txns {
		tx := &x.txns[t]
		if int(tx.node) >= len(x.nodes) || tx.final || tx.ok() && writes(tx.mops) {
			continue
		}
		if x.roles.at(x.nodes[tx.node], tx.invT) == "standby" {
			return true
		}
	}
	return false
}

func (x *analysis) collect(k Kind) *collected {
	c := x.cases[k]
	if c == nil {
		c = &collected{}
		x.cases[k] = c
	}
	return c
}

func (x *analysis) addCase(k Kind, rc rawCase) {
	c := x.collect(k)
	c.count++
	if x.onStandby(rc.txns[:1]) { // the reader, for a read anomaly
		c.standby++
	}
	if len(c.cases) < maxCases {
		c.cases = append(c.cases, rc)
	}
}

// addCycle keeps every cycle found (a search keeps at most maxCycles per
// component); render shows the shortest.
func (x *analysis) addCycle(k Kind, f *found) {
	c := x.collect(k)
	c.count++
	if x.onStandby(f.nodes) {
		c.standby++
	}
	if len(c.cases) < maxCycles {
		c.cases = append(c.cases, rawCase{txns: f.nodes, key: -1, cycle: f})
	}
}

// render puts a kind's first cases (for cycles: the shortest) in words.
func (x *analysis) render(k Kind, col *collected) Anomaly {
	a := Anomaly{Kind: k, Count: col.count, Standby: col.standby, AtLeast: x.atLeast[k], Explanation: Explain(k)}
	cases := col.cases
	if len(cases) > 0 && cases[0].cycle != nil {
		cases = slices.Clone(cases)
		slices.SortStableFunc(cases, func(p, q rawCase) int { return len(p.txns) - len(q.txns) })
	}
	seen := map[int64]bool{}
	for _, rc := range cases[:min(len(cases), maxCases)] {
		c := x.renderCase(k, rc)
		for _, t := range c.Txns {
			i := t.Invoke
			if i < 0 {
				i = t.Complete
			}
			if !seen[i] {
				seen[i] = true
				a.Evidence = append(a.Evidence, i)
			}
		}
		a.Cases = append(a.Cases, c)
	}
	return a
}

func (x *analysis) renderCase(k Kind, rc rawCase) Case {
	c := Case{}
	for i, t := range rc.txns {
		c.Txns = append(c.Txns, x.txnRef(t, i))
	}
	var key int64
	if rc.key >= 0 {
		key = x.keys[rc.key]
		c.Key = &key
	}
	if rc.cycle != nil {
		c.Cycle, c.Shortest = x.cycleSteps(rc.cycle), rc.cycle.shortest
		var parts []string
		for _, s := range c.Cycle {
			parts = append(parts, s.Text)
		}
		c.Text = x.who(c.Txns) + strings.Join(parts, "; ") + ": a cycle, " + conclusion(k)
		return c
	}
	e := int64(0)
	if len(rc.elems) > 0 {
		e = rc.elems[0]
	}
	var text string
	switch k {
	case Internal:
		if rc.suffixOnly {
			text = fmt.Sprintf("T1 read key %d as %s, which does not end with %s, its own appends to that key earlier in the transaction", key, list(rc.list), list(rc.expect))
		} else {
			text = fmt.Sprintf("T1 read key %d as %s, but its own earlier read and appends in the same transaction make it %s", key, list(rc.list), list(rc.expect))
		}
	case DuplicateElements:
		text = fmt.Sprintf("T1 read key %d as %s, which holds %d more than once", key, list(rc.list), e)
	case IncompatibleOrder:
		text = fmt.Sprintf("T1 read key %d as %s and T2 read it as %s: neither is a prefix of the other, so no order of the appends gives both", key, list(rc.list), list(rc.other))
	case UnexpectedElement:
		text = fmt.Sprintf("T1 read key %d as %s, which holds %d, an element no transaction appended to that key", key, list(rc.list), e)
	case G1a:
		text = fmt.Sprintf("T1 read key %d as %s, which holds %d, appended by T2, which failed", key, list(rc.list), e)
	case G1b:
		text = fmt.Sprintf("T1 read key %d as %s, ending in %d, which T2 appended and then followed with another append to the same key in the same transaction", key, list(rc.list), e)
	case LostAppend:
		text = fmt.Sprintf("T1 appended %d to key %d and was acknowledged, but the final read on %s shows key %d as %s, without it", e, key, x.nodes[x.txns[rc.txns[1]].node], key, list(rc.list))
	}
	c.Text = x.who(c.Txns) + text
	return c
}

// who introduces the transactions: "T1 (process 3 on n1, primary), ...: ".
func (x *analysis) who(refs []TxnRef) string {
	parts := make([]string, len(refs))
	for i, t := range refs {
		where := "process " + results.Process(t.Process).String()
		if t.Final {
			where = "the final read"
		}
		if t.Node != "" {
			where += " on " + t.Node
			if t.Role != "" {
				where += " (" + t.Role + ")"
			}
		}
		if t.Type != string(results.OK) {
			where += ", " + t.Type
		}
		parts[i] = fmt.Sprintf("%s = #%d, %s", t.Name, max(t.Invoke, t.Complete), where)
	}
	return "Let " + strings.Join(parts, "; ") + ". "
}

func conclusion(k Kind) string {
	s := "so no serial order of these transactions explains what they observed"
	switch {
	case strings.HasSuffix(string(k), "-realtime"):
		s = "so no serial order that respects real time (each transaction after those that completed before it began) explains what they observed"
	case strings.HasSuffix(string(k), "-process"):
		s = "so no serial order that respects each client's own order explains what they observed"
	}
	return s + "."
}

func (x *analysis) txnRef(t int32, i int) TxnRef {
	tx := &x.txns[t]
	r := TxnRef{Name: "T" + strconv.Itoa(i+1), Invoke: -1, Complete: -1, Process: int(tx.proc), InvokeNS: tx.invT, CompleteNS: -1,
		Final: tx.final, Txn: tx.mops}
	switch tx.typ {
	case tOK:
		r.Type = string(results.OK)
	case tInfo:
		r.Type = string(results.Info)
	default:
		r.Type = string(results.Fail)
	}
	if tx.inv >= 0 {
		r.Invoke = x.ops[tx.inv].Index
	}
	if tx.comp >= 0 {
		r.Complete = x.ops[tx.comp].Index
		r.CompleteNS = x.ops[tx.comp].Time
	}
	if int(tx.node) < len(x.nodes) {
		r.Node = x.nodes[tx.node]
		r.Role = x.roles.at(r.Node, tx.invT)
		if tx.ok() && !tx.final && writes(tx.mops) {
			r.Role = "primary" // only a primary commits an append
		}
	}
	return r
}

func list(l []int64) string {
	parts := make([]string, len(l))
	for i, v := range l {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// cycleSteps explains each edge of a cycle by finding again the key and
// element it came from.
func (x *analysis) cycleSteps(f *found) []Step {
	n := len(f.nodes)
	steps := make([]Step, n)
	for i := range n {
		a, b := f.nodes[i], f.nodes[(i+1)%n]
		s := Step{From: i, To: (i + 1) % n, Rel: relOf(f.rels[i])}
		an, bn := "T"+strconv.Itoa(i+1), "T"+strconv.Itoa((i+1)%n+1)
		switch f.rels[i] {
		case bWW:
			if k, ea, eb, ok := x.wwWhy(a, b); ok {
				s.Key, s.Value = ptr(x.keys[k]), ptr(eb)
				s.Text = fmt.Sprintf("%s appended %d to key %d, and %s appended %d right after it", an, ea, x.keys[k], bn, eb)
			}
		case bWR:
			if k, e, l, ok := x.wrWhy(a, b); ok {
				s.Key, s.Value = ptr(x.keys[k]), ptr(e)
				s.Text = fmt.Sprintf("%s appended %d to key %d, which %s read (as %s)", an, e, x.keys[k], bn, list(l))
			}
		case bRW:
			if k, e, l, ok := x.rwWhy(a, b); ok {
				s.Key, s.Value = ptr(x.keys[k]), ptr(e)
				s.Text = fmt.Sprintf("%s read key %d as %s, without %d, which %s appended next", an, x.keys[k], list(l), e, bn)
			}
		case bRT:
			s.Text = fmt.Sprintf("%s completed (at %s) before %s began (at %s)", an, secs(x.txns[a].compT), bn, secs(x.txns[b].invT))
		default:
			s.Text = fmt.Sprintf("%s ran before %s on the same process %s", an, bn, results.Process(x.txns[a].proc))
		}
		if s.Text == "" {
			s.Text = fmt.Sprintf("%s %s %s", an, s.Rel, bn)
		}
		steps[i] = s
	}
	return steps
}

func ptr(v int64) *int64 { return &v }

func secs(ns int64) string { return strconv.FormatFloat(float64(ns)/1e9, 'f', 6, 64) + " s" }

// nextUsable is the first position at or after p whose writer can carry an
// edge, or -1.
func (x *analysis) nextUsable(k int32, p int) int {
	w := x.writerAt[k]
	for ; p < len(w); p++ {
		if x.usable(w[p]) {
			return p
		}
	}
	return -1
}

// wwWhy finds a key where b appended the next element after one of a's.
func (x *analysis) wwWhy(a, b int32) (k int32, ea, eb int64, ok bool) {
	for j, m := range x.txns[a].mops {
		k = x.mopKey[x.mopOff[a]+int32(j)]
		if m.IsRead() || k < 0 {
			continue
		}
		r, found := x.appends.lookup(k, m.Value)
		if !found || x.appends.refs[r].pos < 0 {
			continue
		}
		q := x.nextUsable(k, int(x.appends.refs[r].pos)+1)
		if q >= 0 && x.writerAt[k][q] == b {
			return k, m.Value, x.order[k][q], true
		}
	}
	return 0, 0, 0, false
}

// externalReads calls f with every external read of committed transaction t.
func (x *analysis) externalReads(t int32, f func(k int32, read []int64) bool) {
	tt := &touches{}
	tt.reset(len(x.txns[t].mops))
	for j, m := range x.txns[t].mops {
		k := x.mopKey[x.mopOff[t]+int32(j)]
		if k < 0 {
			continue
		}
		if _, first := tt.touch(k); !first {
			continue
		}
		if m.IsRead() && m.Read != nil && f(k, m.Read) {
			return
		}
	}
}

// wrWhy finds b's read whose last element a appended.
func (x *analysis) wrWhy(a, b int32) (k int32, e int64, l []int64, ok bool) {
	x.externalReads(b, func(kk int32, read []int64) bool {
		if len(read) == 0 {
			return false
		}
		if r, found := x.appends.lookup(kk, read[len(read)-1]); found && x.appends.refs[r].txn == a {
			k, e, l, ok = kk, read[len(read)-1], read, true
		}
		return ok
	})
	return
}

// rwWhy finds a's read that b's append came next after.
func (x *analysis) rwWhy(a, b int32) (k int32, e int64, l []int64, ok bool) {
	x.externalReads(a, func(kk int32, read []int64) bool {
		if !x.isPrefix(kk, read) {
			return false
		}
		q := x.nextUsable(kk, len(read))
		if q >= 0 && x.writerAt[kk][q] == b {
			k, e, l, ok = kk, x.order[kk][q], read, true
		}
		return ok
	})
	return
}
