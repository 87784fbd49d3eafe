package checker

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
)

// Every list-append kind, with its -process and -realtime variants, gets a
// sentence of its own; other kinds are not list-append's to explain.
func TestListAppendSentences(t *testing.T) {
	assert.Equal(t, "3 × G2-item: an anti-dependency cycle (write skew): transactions each missed the other's appends.",
		explain(&Anomaly{Kind: Kind(elle.G2Item), Count: 3}))
	assert.Contains(t, explain(&Anomaly{Kind: Kind(elle.GSingleRealtime), Count: 1}),
		"1 × G-single-realtime: read skew: a cycle with one anti-dependency, a transaction saw part of another's appends and missed the rest (counting real time")
	assert.Contains(t, explain(&Anomaly{Kind: Kind(elle.G0Process), Count: 2}), "(counting each client's order")
	for k := range listAppendWhat {
		assert.NotContains(t, explain(&Anomaly{Kind: Kind(k), Count: 1}), "instances of", k)
	}
	assert.Empty(t, listAppendSentence(elle.Kind(KindStaleRead), 1))
}

// Appending transactions are writes for availability: the longest stretch
// of a fault window without an acknowledged write counts them, not the
// read-only transactions between them.
func TestAppendTxnsAreWrites(t *testing.T) {
	txn := func(m ...results.Mop) mod { return func(o *results.Op) { o.Txn = m } }
	b := new(hb).topology(0).nemesis(100, 101, partition)
	b.add(140, 1, results.Invoke, results.WorkloadAppend, results.FTxn, "", txn(results.Append(1, 1)))
	b.add(150, 1, results.OK, results.WorkloadAppend, results.FTxn, "", on("n1"), txn(results.Append(1, 1)))
	b.add(400, 2, results.Invoke, results.WorkloadAppend, results.FTxn, "", txn(results.ReadOf(1, nil)))
	b.add(410, 2, results.OK, results.WorkloadAppend, results.FTxn, "", on("n2"), txn(results.ReadOf(1, []int64{1})))
	b.add(890, 1, results.Invoke, results.WorkloadAppend, results.FTxn, "", txn(results.Append(1, 2)))
	b.add(900, 1, results.OK, results.WorkloadAppend, results.FTxn, "", on("n1"), txn(results.Append(1, 2)))
	b.nemesis(1000, 1001, healN2)
	res := CheckHistory(context.Background(), &results.History{Ops: b.ops}, Options{})
	av := res.Find(NameAvailability)
	require.NotNil(t, av)
	require.Len(t, av.Availability.Windows, 1)
	assert.Equal(t, int64(900-150), av.Availability.Windows[0].WriteGapNS)
}

// A finding quotes the kind's own explanation inside one sentence: "level
// forbids kind (explanation)", not two sentences run together.
func TestListAppendFindingSentence(t *testing.T) {
	an := newAnomalySet(index(nil))
	addListAppendKind(an, elle.Anomaly{Kind: elle.GNonadjacent, Count: 1,
		Explanation: "A cycle with several anti-dependencies, no two adjacent (long fork)."}, "repeatable-read")
	list := an.list()
	require.Len(t, list, 1)
	assert.False(t, list[0].Documented)
	assert.Equal(t, docTxnIsolation, list[0].Doc)
	assert.Contains(t, list[0].Why, "repeatable-read forbids G-nonadjacent (a cycle with several anti-dependencies, no two adjacent (long fork))")
	assert.NotContains(t, list[0].Why, "..")
}

// A G2-item of Fekete's read-only shape among serializable transactions on
// the primary is named apart (KindReadOnlyAnomaly), a finding with its
// cause; plain write skew beside it stays a G2-item.
func TestReadOnlyAnomalyNamed(t *testing.T) {
	ap, rd := results.Append, func(k int64, v ...int64) results.Mop { return results.ReadOf(k, append([]int64{}, v...)) }
	tx := func(p int, inv, comp int64, m ...results.Mop) histgen.Txn {
		return histgen.Txn{Process: p, Node: "n1", Inv: inv, Comp: comp, Type: results.OK, Mops: m}
	}
	ops := histgen.Layout([]histgen.Txn{
		// Read-only anomaly on keys 1 and 2: T2's commit is acknowledged
		// after T1 and T3 began.
		tx(0, 0, 30, rd(1), ap(2, 20)),
		tx(1, 0, 50, ap(1, 10)),
		tx(2, 10, 20, rd(1, 10), rd(2)),
		// Write skew on keys 3 and 4.
		tx(3, 100, 110, rd(3), ap(4, 40)),
		tx(4, 100, 110, rd(4), ap(3, 30)),
		{Process: int(results.HarnessProcess), Node: "n1", Inv: 1000, Comp: 1001, Type: results.OK, Final: true,
			Mops: []results.Mop{rd(1, 10), rd(2, 20), rd(3, 30), rd(4, 40)}},
	})
	res := CheckHistory(context.Background(), &results.History{Ops: ops}, Options{Isolation: "serializable"})
	got := map[Kind]int{}
	for _, a := range res.Anomalies {
		got[a.Kind] += a.Count
		assert.False(t, a.Documented, a.Kind)
		if a.Kind == KindReadOnlyAnomaly {
			assert.Contains(t, a.Why, "A PostgreSQL SSI bug")
			require.NotEmpty(t, a.Examples)
			assert.Len(t, a.Examples[0].Ops, 3)
		}
	}
	assert.Equal(t, map[Kind]int{KindReadOnlyAnomaly: 1, Kind(elle.G2Item): 1}, got)
	assert.Equal(t, Invalid, res.Verdict)

	// At repeatable read the level allows both: neither is a finding.
	res = CheckHistory(context.Background(), &results.History{Ops: ops}, Options{Isolation: "repeatable-read"})
	for _, a := range res.Anomalies {
		assert.NotEqual(t, KindReadOnlyAnomaly, a.Kind)
	}
}
