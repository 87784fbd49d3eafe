package checker

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker/elle"
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
