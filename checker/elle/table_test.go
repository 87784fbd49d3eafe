package elle

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
)

// anomalyCase is a hand-made history with exactly the anomalies want, and
// its clean twin: the same transactions with reads that fit a serial
// order respecting real time.
type anomalyCase struct {
	name  string
	bad   []tx
	twin  []tx
	want  []Kind
	rules string // a model the anomaly rules out
	keeps string // a model the anomaly leaves satisfied ("" none asserted)
}

var anomalyCases = []anomalyCase{
	{
		name: "G0: appends interleaved in opposite orders on two keys",
		bad: []tx{ok(0, 0, 10, ap(1, 1), ap(2, 1)), ok(1, 0, 10, ap(1, 2), ap(2, 2)),
			ok(2, 20, 30, rd(1, 1, 2), rd(2, 2, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1), ap(2, 1)), ok(1, 0, 10, ap(1, 2), ap(2, 2)),
			ok(2, 20, 30, rd(1, 1, 2), rd(2, 1, 2))},
		want: []Kind{G0}, rules: "read-uncommitted",
	},
	{
		name: "G1a: a read of a failed transaction's append",
		bad:  []tx{with(results.Fail, ok(0, 0, 10, ap(1, 1))), ok(1, 0, 10, rd(1, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 0, 10, rd(1, 1))},
		want: []Kind{G1a}, rules: "read-committed", keeps: "read-uncommitted",
	},
	{
		name: "G1b: a read of a state between two appends of one transaction",
		bad:  []tx{ok(0, 0, 10, ap(1, 1), ap(1, 2)), ok(1, 0, 10, rd(1, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1), ap(1, 2)), ok(1, 0, 10, rd(1, 1, 2))},
		want: []Kind{G1b}, rules: "read-committed", keeps: "read-uncommitted",
	},
	{
		name: "internal: a transaction does not see its own append",
		bad:  []tx{ok(0, 0, 10, ap(1, 5), rd(1))},
		twin: []tx{ok(0, 0, 10, ap(1, 5), rd(1, 5))},
		want: []Kind{Internal}, rules: "snapshot-isolation", keeps: "read-committed",
	},
	{
		name: "internal: a second read disagrees with the first",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, rd(1, 1), rd(1, 1, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, rd(1, 1), rd(1, 1))},
		want: []Kind{Internal, DuplicateElements}, rules: "read-uncommitted", keeps: "",
	},
	{
		name: "duplicate elements",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, rd(1, 1, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, rd(1, 1))},
		want: []Kind{DuplicateElements}, rules: "read-uncommitted",
	},
	{
		name: "incompatible order: [1 2] and [2]",
		bad: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 0, 10, ap(1, 2)), ok(2, 20, 30, rd(1, 1, 2)),
			ok(3, 0, 30, rd(1, 2))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 0, 10, ap(1, 2)), ok(2, 20, 30, rd(1, 1, 2)),
			ok(3, 0, 30, rd(1, 1))},
		want: []Kind{IncompatibleOrder}, rules: "read-uncommitted",
	},
	{
		name: "unexpected element",
		bad:  []tx{ok(0, 0, 10, rd(1, 99))},
		twin: []tx{ok(0, 0, 10, rd(1))},
		want: []Kind{UnexpectedElement}, rules: "read-uncommitted",
	},
	{
		name: "lost append: acknowledged, never read, missing from the final read",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), final("n1", 100, rd(1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), final("n1", 100, rd(1, 1))},
		want: []Kind{LostAppend}, rules: "read-uncommitted",
	},
	{
		name: "lost append: read, then missing from the final read (a stale final read too)",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, rd(1, 1)), final("n1", 100, rd(1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, rd(1, 1)), final("n1", 100, rd(1, 1))},
		want: []Kind{LostAppend, GSingleRealtime}, rules: "read-uncommitted",
	},
	{
		name: "G1c: each read the other's append",
		bad:  []tx{ok(0, 0, 10, ap(1, 1), rd(2, 1)), ok(1, 0, 10, ap(2, 1), rd(1, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1), rd(2)), ok(1, 0, 10, ap(2, 1), rd(1, 1))},
		want: []Kind{G1c}, rules: "read-committed", keeps: "read-uncommitted",
	},
	{
		name: "G-single: read skew",
		bad: []tx{ok(0, 0, 10, ap(1, 1), ap(2, 1)), ok(1, 0, 10, rd(1), rd(2, 1)),
			ok(2, 20, 30, rd(1, 1), rd(2, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1), ap(2, 1)), ok(1, 0, 10, rd(1, 1), rd(2, 1)),
			ok(2, 20, 30, rd(1, 1), rd(2, 1))},
		want: []Kind{GSingle}, rules: "snapshot-isolation", keeps: "read-committed",
	},
	{
		name: "G-nonadjacent: long fork",
		bad: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 0, 10, ap(2, 1)),
			ok(2, 0, 10, rd(1, 1), rd(2)), ok(3, 0, 10, rd(1), rd(2, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 0, 10, ap(2, 1)),
			ok(2, 0, 10, rd(1, 1), rd(2)), ok(3, 0, 10, rd(1, 1), rd(2, 1))},
		want: []Kind{GNonadjacent}, rules: "snapshot-isolation", keeps: "read-committed",
	},
	{
		name: "G2-item: write skew",
		bad: []tx{ok(0, 0, 10, rd(1), ap(2, 1)), ok(1, 0, 10, rd(2), ap(1, 1)),
			ok(2, 20, 30, rd(1, 1), rd(2, 1))},
		twin: []tx{ok(0, 0, 10, rd(1), ap(2, 1)), ok(1, 0, 10, rd(2, 1), ap(1, 1)),
			ok(2, 20, 30, rd(1, 1), rd(2, 1))},
		want: []Kind{G2Item}, rules: "serializable", keeps: "snapshot-isolation",
	},
	{
		name: "G0-realtime: a later append ordered before an earlier one",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, ap(1, 2)), ok(2, 40, 50, rd(1, 2, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 30, ap(1, 2)), ok(2, 40, 50, rd(1, 1, 2))},
		want: []Kind{G0Realtime}, rules: "strict-serializable", keeps: "serializable",
	},
	{
		name: "G1c-realtime: a read of an append made after the reader completed",
		bad:  []tx{ok(0, 0, 10, rd(1, 1)), ok(1, 20, 30, ap(1, 1))},
		twin: []tx{ok(0, 0, 10, rd(1)), ok(1, 20, 30, ap(1, 1))},
		want: []Kind{G1cRealtime}, rules: "strict-serializable", keeps: "serializable",
	},
	{
		name: "G-single-realtime: a stale read",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), on("n2", ok(1, 20, 30, rd(1))), ok(2, 40, 50, rd(1, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), on("n2", ok(1, 20, 30, rd(1, 1))), ok(2, 40, 50, rd(1, 1))},
		want: []Kind{GSingleRealtime}, rules: "strict-serializable", keeps: "serializable",
	},
	{
		name: "G-nonadjacent-realtime",
		bad: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 100, rd(2)), ok(2, 8, 100, ap(2, 1)),
			ok(3, 5, 100, rd(1), rd(2, 1)), ok(4, 200, 210, rd(1, 1), rd(2, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 20, 100, rd(2)), ok(2, 8, 100, ap(2, 1)),
			ok(3, 5, 100, rd(1, 1), rd(2, 1)), ok(4, 200, 210, rd(1, 1), rd(2, 1))},
		want: []Kind{GNonadjacentRealtime}, rules: "strict-serializable", keeps: "serializable",
	},
	{
		name: "G2-item-realtime",
		bad: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 5, 100, rd(1), ap(2, 1)), ok(2, 20, 100, rd(2)),
			ok(3, 200, 210, rd(1, 1), rd(2, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(1, 5, 100, rd(1), ap(2, 1)), ok(2, 20, 100, rd(2, 1)),
			ok(3, 200, 210, rd(1, 1), rd(2, 1))},
		want: []Kind{G2ItemRealtime}, rules: "strict-serializable", keeps: "serializable",
	},
	{
		name: "G-single-process: a client misses its own append",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), ok(0, 20, 30, rd(1)), ok(1, 40, 50, rd(1, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(0, 20, 30, rd(1, 1)), ok(1, 40, 50, rd(1, 1))},
		want: []Kind{GSingleProcess, GSingleRealtime}, rules: "strong-session-serializable", keeps: "serializable",
	},
	{
		name: "G0-process: a client's two appends in the wrong order",
		bad:  []tx{ok(0, 0, 10, ap(1, 1)), ok(0, 20, 30, ap(1, 2)), ok(1, 40, 50, rd(1, 2, 1))},
		twin: []tx{ok(0, 0, 10, ap(1, 1)), ok(0, 20, 30, ap(1, 2)), ok(1, 40, 50, rd(1, 1, 2))},
		want: []Kind{G0Process, G0Realtime}, rules: "strong-session-serializable", keeps: "serializable",
	},
}

func TestAnomalyTable(t *testing.T) {
	for _, c := range anomalyCases {
		t.Run(c.name, func(t *testing.T) {
			r := check(t, hist(c.bad...), Options{})
			got := kindsOf(r)
			want := map[Kind]int{}
			for _, k := range c.want {
				want[k] = 1
			}
			require.Equal(t, want, got, "summary: %s", r.Summary)
			assert.Empty(t, r.Incomplete)
			assert.Empty(t, r.Undecided)
			assert.Contains(t, ruledOut(r), c.rules, r.Summary)
			if c.keeps != "" {
				assert.Contains(t, r.Satisfies, c.keeps, r.Summary)
			}
			assert.Equal(t, Invalid, r.Verdict)
			for _, a := range r.Anomalies {
				require.NotEmpty(t, a.Cases, a.Kind)
				assert.NotEmpty(t, a.Evidence, a.Kind)
				assert.NotEmpty(t, a.Explanation, a.Kind)
				for _, cs := range a.Cases {
					assert.Contains(t, cs.Text, "T1", a.Kind)
					if cs.Cycle != nil {
						assert.Len(t, cs.Cycle, len(cs.Txns), "%s: a cycle has one step per transaction", a.Kind)
						assert.True(t, cs.Shortest)
						for _, s := range cs.Cycle {
							if s.Rel == WW || s.Rel == WR || s.Rel == RW {
								assert.NotNil(t, s.Key, "%s: every data step names its key: %s", a.Kind, s.Text)
							}
						}
					}
				}
			}
			twin := check(t, hist(c.twin...), Options{})
			assert.Empty(t, twin.Anomalies, "twin: %s", twin.Summary)
			assert.Equal(t, Valid, twin.Verdict, twin.Summary)
			assert.Equal(t, ModelNames(), twin.Satisfies)
		})
	}
}

func ruledOut(r *Result) []string {
	var out []string
	for _, ro := range r.RulesOut {
		out = append(out, ro.Model)
	}
	return out
}
