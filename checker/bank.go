package checker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// CheckBank checks the bank workload: every snapshot read (client reads and
// final reads) sums to the initial total from the init entry, every
// acknowledged transfer is in the final transfer log of the primary, and
// the primary's final balances are the initial ones plus exactly the
// transfers in that log.
func CheckBank(ctx context.Context, ops []results.Op, opts Options) Check {
	h := index(ops)
	return checkBank(ctx, h, opts, newDocContext(h, h.roleTimeline(), opts.Settings), newAnomalySet(h))
}

func checkBank(ctx context.Context, h *history, opts Options, dc *docContext, an *anomalySet) Check {
	start := time.Now()
	chk := Check{Name: NameBank}
	res := &BankResult{}
	chk.Bank = res
	defer func() { chk.ElapsedNS = time.Since(start).Nanoseconds() }()

	var initial []int64
	for st := range h.harnessSteps() {
		op := h.stepOp(st)
		if op.F == results.FInit && op.Workload == results.WorkloadBank && op.Type == results.OK {
			initial = op.Values
		}
	}
	if initial == nil {
		chk.Verdict = Unknown
		chk.Error = "no bank init entry: the initial balances and total are unknown"
		chk.Summary = "unknown: " + chk.Error
		return chk
	}
	res.Accounts = len(initial)
	for _, b := range initial {
		res.Total += b
	}
	bad := 0
	// checkRead judges one read's balances; ref and node describe it.
	checkRead := func(values []int64, t int64, node string, ref func() OpRef) {
		res.Reads++
		var sum int64
		for _, b := range values {
			sum += b
		}
		if sum == res.Total && len(values) == res.Accounts {
			return
		}
		bad++
		if len(res.BadReads) < maxListed {
			res.BadReads = append(res.BadReads, BadTotal{Read: ref(), Balances: values, Sum: sum})
		}
		role := dc.rt.roleAt(node, t)
		an.add(instance{kind: KindBankTotal, doc: docBank, node: node, role: role, t: t, key: results.WorkloadBank,
			example: func() Example {
				return Example{Key: results.WorkloadBank, Ops: []OpRef{ref()},
					Text: fmt.Sprintf("bank read on %s (%s) summed to %d over %d accounts, not %d", node, role, sum, len(values), res.Total)}
			}})
	}
	for _, c := range h.clients {
		if c.wl != wlBank || c.typ != tOK {
			continue
		}
		switch c.f {
		case fRead:
			if c.side >= 0 {
				checkRead(h.bankReads[c.side], c.invT, h.nodeName(&c), func() OpRef { return h.ref(c) })
			}
		case fTransfer:
			res.Transfers++
		}
	}
	if ctx.Err() != nil {
		chk.Verdict, chk.Error = Unknown, fmt.Sprintf("stopped: %v", ctx.Err())
		chk.Summary = "unknown: " + chk.Error
		return chk
	}
	fs := h.finals()[results.WorkloadBank]
	for _, node := range sortedNodes(fs) {
		for _, f := range fs[node] {
			checkRead(f.op.Values, f.s.invT, node, func() OpRef { return h.refStep(f.s) })
		}
	}
	res.BadReadCount = bad

	var problems []string
	if bad > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d reads do not sum to the initial total %d", bad, res.Reads, res.Total))
	}
	node := pickFinal(fs, h.finalPrimary(opts.FinalPrimary))
	judged := node != ""
	if judged {
		f := fs[node][len(fs[node])-1]
		transfers := bankTransfers(h)
		in := make(map[int64]bool, len(f.op.IDs))
		for _, id := range f.op.IDs {
			in[id] = true
		}
		lost := 0
		for _, c := range h.clients { // history order, for the listing
			if c.wl == wlBank && c.f == fTransfer && c.side >= 0 && c.typ == tOK && !in[c.value] {
				lost++
				if len(res.LostTransfers) < maxListed {
					res.LostTransfers = append(res.LostTransfers, h.ref(c))
				}
			}
		}
		if lost > 0 {
			problems = append(problems, fmt.Sprintf("%d of %d acknowledged transfers are missing from the final transfer log on %s", lost, res.Transfers, node))
		}
		// The final balances must be the initial ones moved by exactly the
		// logged transfers (each is logged in its own transaction).
		expected := append([]int64(nil), initial...)
		complete := true
		for _, id := range f.op.IDs {
			c, ok := transfers[id]
			if !ok {
				complete = false // an unknown id: rpo reports it
				break
			}
			t := h.transfers[c.side]
			if t.From < 0 || t.From >= len(expected) || t.To < 0 || t.To >= len(expected) {
				complete = false
				break
			}
			expected[t.From] -= t.Amount
			expected[t.To] += t.Amount
		}
		if complete && len(f.op.Values) > 0 && !slices.Equal(expected, f.op.Values) {
			res.FinalBalances, res.ExpectedBalances = f.op.Values, expected
			an.add(instance{kind: KindBankTotal, doc: docBank, node: node, role: rolePrimary, t: f.s.invT, key: results.WorkloadBank,
				example: func() Example {
					return Example{Key: results.WorkloadBank, Ops: []OpRef{h.refStep(f.s)},
						Text: fmt.Sprintf("final balances on %s are %v, but the initial balances moved by the %d logged transfers give %v", node, f.op.Values, len(f.op.IDs), expected)}
				}})
			problems = append(problems, fmt.Sprintf("the final balances on %s are not the initial ones plus the %d logged transfers", node, len(f.op.IDs)))
		}
	}
	switch {
	case len(problems) > 0:
		chk.Verdict = Invalid
		chk.Summary = strings.Join(problems, "; ")
	case !judged:
		chk.Verdict = Unknown
		chk.Error = "no final read on the primary: lost transfers cannot be judged"
		chk.Summary = fmt.Sprintf("unknown: %s (%d reads kept the total %d)", chk.Error, res.Reads, res.Total)
	default:
		chk.Verdict = Valid
		chk.Summary = fmt.Sprintf("all %d reads sum to %d and all %d acknowledged transfers are in the final state on %s", res.Reads, res.Total, res.Transfers, node)
	}
	return chk
}
