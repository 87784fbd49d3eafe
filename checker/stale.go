package checker

import (
	"context"
	"fmt"
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
	return checkStaleReads(ctx, h, indexRegister(h))
}

type staleHit struct {
	read, newer int // indices into history.clients
	staleNS     int64
}

func checkStaleReads(ctx context.Context, h *history, ri *regIndex) Check {
	start := time.Now()
	chk := Check{Name: NameStaleRead}
	res := &StaleReadResult{ByNode: map[string]int{}, StaleByNode: map[string]int{}}
	chk.StaleRead = res
	var hits []staleHit
	var winv, wcomp []int64
	var wcall, sufMin []int
	for _, ops := range ri.byKey {
		if ctx.Err() != nil {
			chk.Verdict, chk.Error = Unknown, fmt.Sprintf("stopped: %v", ctx.Err())
			chk.Summary = "unknown: " + chk.Error
			return chk
		}
		// Acknowledged writes of this key, in invoke order (ops are).
		winv, wcomp, wcall = winv[:0], wcomp[:0], wcall[:0]
		for i := range ops {
			if op := &ops[i]; op.kind != opRead && op.ok() {
				winv = append(winv, op.invT)
				wcomp = append(wcomp, op.compT)
				wcall = append(wcall, int(op.call))
			}
		}
		// sufMin[i]: the write among wcall[i:] acknowledged first.
		sufMin = slices.Grow(sufMin[:0], len(wcall)+1)[:len(wcall)+1]
		sufMin[len(wcall)] = -1
		for i := len(wcall) - 1; i >= 0; i-- {
			sufMin[i] = i
			if j := sufMin[i+1]; j >= 0 && wcomp[j] < wcomp[i] {
				sufMin[i] = j
			}
		}
		for i := range ops {
			op := &ops[i]
			if op.kind != opRead || !op.ok() || !op.hasValue {
				continue
			}
			node := h.nodes[op.node]
			res.Reads++
			res.ByNode[node]++
			existed, known := ri.eff(op.value)
			if !known {
				continue // an unexpected value: rpo reports it
			}
			i := sort.Search(len(winv), func(i int) bool { return winv[i] > existed })
			if j := sufMin[i]; j >= 0 && wcomp[j] < op.invT {
				hits = append(hits, staleHit{read: int(op.call), newer: wcall[j], staleNS: op.invT - wcomp[j]})
				res.StaleByNode[node]++
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
