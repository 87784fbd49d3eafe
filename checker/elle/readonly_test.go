package elle

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readOnlyHistory is Fekete's read-only anomaly on keys 1 and 2: the pivot
// (process 0) reads key 1 empty and appends 20 to key 2, the writer
// (process 1) appends 10 to key 1, the reader (process 2) sees 10 and
// misses 20; readerAt is when the reader begins, writerDone when the
// writer's commit is acknowledged.
func readOnlyHistory(readerAt, writerDone int64) []tx {
	return []tx{
		ok(0, 0, 30, rd(1), ap(2, 20)),
		ok(1, 0, writerDone, ap(1, 10)),
		ok(2, readerAt, readerAt+10, rd(1, 10), rd(2)),
		final("n1", 1000, rd(1, 10), rd(2, 20)),
	}
}

// g2Cases returns the cases of the one G2-item the history must show.
func g2Cases(t *testing.T, txs []tx) []Case {
	t.Helper()
	r := check(t, hist(txs...), Options{Model: "serializable"})
	require.Equal(t, 1, kindsOf(r)[G2Item], r.Summary)
	for _, a := range r.Anomalies {
		if a.Kind == G2Item {
			return a.Cases
		}
	}
	return nil
}

func TestReadOnlyAnomaly(t *testing.T) {
	r := check(t, hist(readOnlyHistory(10, 50)...), Options{Model: "serializable"})
	require.Equal(t, map[Kind]int{G2Item: 1}, kindsOf(r), "nothing but the one G2-item: %s", r.Summary)
	cs := r.Anomalies[0].Cases
	require.Len(t, cs, 1)
	roles, ok := ReadOnlyAnomaly(cs[0])
	require.True(t, ok, "%+v", cs[0])
	byProcess := func(i int) int { return cs[0].Txns[i].Process }
	assert.Equal(t, 0, byProcess(roles.Pivot))
	assert.Equal(t, 1, byProcess(roles.Writer))
	assert.Equal(t, 2, byProcess(roles.Reader))
}

// The read-write twin: a third transaction that also appended to another
// key is the same window's anomaly.
func TestReadOnlyAnomalyReadWriteTwin(t *testing.T) {
	txs := readOnlyHistory(10, 50)
	txs[2].Mops = append(txs[2].Mops, ap(3, 30))
	txs[3].Mops = append(txs[3].Mops, rd(3, 30))
	cs := g2Cases(t, txs)
	require.Len(t, cs, 1)
	roles, ok := ReadOnlyAnomaly(cs[0])
	require.True(t, ok, cs[0].Text)
	assert.Equal(t, 2, cs[0].Txns[roles.Reader].Process)
}

func TestReadOnlyAnomalyNot(t *testing.T) {
	// The reader began after the writer's commit was acknowledged: the
	// cycle is the same, but no commit was in progress around it.
	cs := g2Cases(t, readOnlyHistory(60, 50))
	_, is := ReadOnlyAnomaly(cs[0])
	assert.False(t, is, "reader after the writer's acknowledgement")

	// Plain write skew: two transactions, each missing the other's append.
	skew := []tx{
		ok(0, 0, 10, rd(1), ap(2, 20)),
		ok(1, 0, 10, rd(2), ap(1, 10)),
		final("n1", 100, rd(1, 10), rd(2, 20)),
	}
	cs = g2Cases(t, skew)
	_, is = ReadOnlyAnomaly(cs[0])
	assert.False(t, is, "write skew")

	// The pivot failed: its append did not happen, and the cycle is gone.
	txs := readOnlyHistory(10, 50)
	txs[0] = with("fail", txs[0])
	txs[3] = final("n1", 1000, rd(1, 10), rd(2))
	r := check(t, hist(txs...), Options{Model: "serializable"})
	assert.Empty(t, r.Anomalies, r.Summary)
}
