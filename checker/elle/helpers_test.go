package elle

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
)

// tx is a hand-made transaction.
type tx = histgen.Txn

func ap(k, v int64) results.Mop { return results.Append(k, v) }

// rd is a read of k that returned vals (an empty list without vals).
func rd(k int64, vals ...int64) results.Mop {
	return results.ReadOf(k, append([]int64{}, vals...))
}

// ok is a transaction of process p on n1 that completed ok.
func ok(p int, inv, comp int64, mops ...results.Mop) tx {
	return tx{Process: p, Node: "n1", Inv: inv, Comp: comp, Type: results.OK, Mops: mops}
}

func on(node string, t tx) tx { t.Node = node; return t }

func with(typ results.Type, t tx) tx { t.Type = typ; return t }

func final(node string, at int64, mops ...results.Mop) tx {
	return tx{Process: int(results.HarnessProcess), Node: node, Inv: at, Comp: at + 1, Type: results.OK, Mops: mops, Final: true}
}

func hist(txs ...tx) []results.Op { return histgen.Layout(txs) }

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
