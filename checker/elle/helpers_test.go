package elle

import (
	"cmp"
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
)

// tx is a hand-made transaction: process, node, invoke and completion
// times, how it ended and its micro-operations as the completion reports
// them.
type tx struct {
	p         int
	node      string
	inv, comp int64
	typ       results.Type
	mops      []results.Mop
	final     bool
}

func ap(k, v int64) results.Mop { return results.Append(k, v) }

// rd is a read of k that returned vals (an empty list without vals).
func rd(k int64, vals ...int64) results.Mop {
	return results.ReadOf(k, append([]int64{}, vals...))
}

func ok(p int, inv, comp int64, mops ...results.Mop) tx {
	return tx{p: p, node: "n1", inv: inv, comp: comp, typ: results.OK, mops: mops}
}

func on(node string, t tx) tx { t.node = node; return t }

func with(typ results.Type, t tx) tx { t.typ = typ; return t }

func final(node string, at int64, mops ...results.Mop) tx {
	return tx{p: int(results.HarnessProcess), node: node, inv: at, comp: at + 1, typ: results.OK, mops: mops, final: true}
}

// hist lays the transactions out as a history: invokes (reads unknown) and
// completions in time order.
func hist(txs ...tx) []results.Op {
	type ev struct {
		t  int64
		op results.Op
	}
	var evs []ev
	for _, t := range txs {
		if t.final {
			evs = append(evs, ev{t.comp, results.Op{Process: results.HarnessProcess, Type: results.OK, F: results.FFinal,
				Workload: results.WorkloadAppend, Node: t.node, Txn: t.mops, Latency: t.comp - t.inv}})
			continue
		}
		invm := make([]results.Mop, len(t.mops))
		for i, m := range t.mops {
			invm[i] = m
			if m.IsRead() {
				invm[i].Read = nil
			}
		}
		evs = append(evs, ev{t.inv, results.Op{Process: results.Process(t.p), Type: results.Invoke, F: results.FTxn,
			Workload: results.WorkloadAppend, Node: t.node, Txn: invm}})
		comp := results.Op{Process: results.Process(t.p), Type: t.typ, F: results.FTxn, Workload: results.WorkloadAppend,
			Node: t.node, Txn: t.mops, Latency: t.comp - t.inv}
		if t.typ != results.OK {
			comp.Txn = invm
		}
		if t.comp >= 0 {
			evs = append(evs, ev{t.comp, comp})
		}
	}
	slices.SortStableFunc(evs, func(a, b ev) int { return cmp.Compare(a.t, b.t) })
	ops := make([]results.Op, len(evs))
	for i, e := range evs {
		e.op.V, e.op.Index, e.op.Time = results.SchemaVersion, int64(i), e.t
		ops[i] = e.op
	}
	return ops
}

// kindsOf lists the kinds found with their counts.
func kindsOf(r *Result) map[Kind]int {
	out := map[Kind]int{}
	for _, a := range r.Anomalies {
		out[a.Kind] = a.Count
	}
	return out
}

func check(t *testing.T, ops []results.Op, opts Options) *Result {
	t.Helper()
	r := Check(context.Background(), ops, opts)
	require.NotNil(t, r)
	return r
}
