package elle

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
)

// Generated histories are strict serializable by construction: no anomaly,
// every model satisfied, whatever the mix of info and failed transactions.
func TestGeneratedHistoriesAreValid(t *testing.T) {
	for seed := range int64(20) {
		o := histgen.TxnOptions{Final: true, Processes: 1 + int(seed%7), Keys: 1 + int(seed%4), MaxMops: 1 + int(seed%6),
			InfoRate: 0.1, FailRate: 0.05, MaxWritesPerKey: 4 + int(seed%30)}
		r := check(t, histgen.ListAppend(seed, 2000, o), Options{})
		require.Empty(t, r.Anomalies, "seed %d: %s", seed, r.Summary)
		require.Equal(t, Valid, r.Verdict)
		require.Equal(t, ModelNames(), r.Satisfies)
		require.Equal(t, "n1", r.FinalNode)
		require.Positive(t, r.Edges.WW+r.Edges.WR+r.Edges.RW)
		// The real-time edges are a reduction: a few per transaction.
		require.Less(t, r.Edges.Realtime, r.Txns*(o.Processes+2), "seed %d", seed)
	}
}

// shift moves a pattern to keys, elements, times and processes of its own.
func shift(txs []tx, kOff, vOff, tOff int64, pOff int) []tx {
	out := make([]tx, len(txs))
	for i, t := range txs {
		t.Inv += tOff
		t.Comp += tOff
		if !t.Final {
			t.Process += pOff
		}
		mops := make([]results.Mop, len(t.Mops))
		for j, m := range t.Mops {
			m.Key += kOff
			if m.IsRead() {
				l := make([]int64, len(m.Read))
				for x, v := range m.Read {
					l[x] = v + vOff
				}
				m.Read = l
			} else {
				m.Value += vOff
			}
			mops[j] = m
		}
		t.Mops = mops
		out[i] = t
	}
	return out
}

// planted builds a history of epochs, one after the other in time: each a
// stretch of serializable filler on keys of its own, then one pattern (its
// bad form, or with twin its clean twin) on keys of its own. It returns the
// history and the anomalies planted.
func planted(seed int64, picks []int, twin bool) ([]results.Op, map[Kind]int) {
	var all []tx
	want := map[Kind]int{}
	rng := rand.New(rand.NewPCG(uint64(seed), 5))
	t0 := int64(0)
	for e, pi := range picks {
		base := int64(e+1) * 1_000_000
		filler := histgen.Txns(seed*100+int64(e), 50+rng.IntN(150), histgen.TxnOptions{KeyBase: base, ValueBase: base, TimeBase: t0,
			ProcessBase: e*1000 + 100, Processes: 1 + rng.IntN(5)})
		end := t0
		for _, f := range filler {
			end = max(end, f.Comp, f.Inv)
		}
		all = append(all, filler...)
		p := anomalyCases[pi]
		txs := p.bad
		if twin {
			txs = p.twin
		} else {
			for _, k := range p.want {
				want[k]++
			}
		}
		moved := shift(txs, base+500_000, base+500_000, end+1000, e*1000)
		for _, m := range moved {
			end = max(end, m.Comp, m.Inv)
		}
		all = append(all, moved...)
		t0 = end + 1000
	}
	return histgen.Layout(all), want
}

// The checker finds exactly the anomalies planted among serializable
// transactions, and none in the same histories with every pattern replaced
// by its clean twin.
func TestFindsExactlyWhatWasPlanted(t *testing.T) {
	var usable []int
	for i, c := range anomalyCases {
		if !strings.HasPrefix(c.name, "lost append") { // a final read must read every key
			usable = append(usable, i)
		}
	}
	rng := rand.New(rand.NewPCG(42, 42))
	for seed := range int64(40) {
		picks := make([]int, 1+rng.IntN(6))
		for i := range picks {
			picks[i] = usable[rng.IntN(len(usable))]
		}
		var names []string
		for _, p := range picks {
			names = append(names, anomalyCases[p].name)
		}
		ops, want := planted(seed, picks, false)
		r := check(t, ops, Options{})
		require.Equal(t, want, kindsOf(r), "seed %d, planted %v: %s", seed, names, r.Summary)
		assert.Empty(t, r.Incomplete)

		ops, _ = planted(seed, picks, true)
		r = check(t, ops, Options{})
		require.Empty(t, r.Anomalies, "seed %d, twins of %v: %s", seed, names, r.Summary)
		require.Equal(t, Valid, r.Verdict, fmt.Sprint(seed))
	}
}
