package results

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// randomTxn draws micro-operations of every shape: appends, reads with a
// list, reads of an empty list, unknown reads, and other functions with
// awkward names.
func randomTxn(rng *rand.Rand, pick func() string) []Mop {
	txn := []Mop{}
	for range rng.IntN(5) {
		k := rng.Int64() - rng.Int64()
		switch rng.IntN(5) {
		case 0:
			txn = append(txn, Append(k, rng.Int64()-rng.Int64()))
		case 1:
			txn = append(txn, ReadOf(k, nil))
		case 2:
			txn = append(txn, ReadOf(k, []int64{}))
		case 3:
			l := make([]int64, 1+rng.IntN(4))
			for i := range l {
				l[i] = rng.Int64() - rng.Int64()
			}
			txn = append(txn, ReadOf(k, l))
		default:
			f := pick()
			if f == MopRead {
				f = "w"
			}
			txn = append(txn, Mop{F: f, Key: k, Value: rng.Int64N(100)})
		}
	}
	return txn
}

// Micro-operations read back as written, keeping null (unknown) apart from
// [] (an empty list).
func TestMopRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// JSON cannot carry invalid UTF-8 (encoding/json writes U+FFFD).
	pick := func() string { return strings.ToValidUTF8(awkward[rng.IntN(len(awkward))], "?") }
	for range 2000 {
		op := Op{V: SchemaVersion, Type: OK, F: FTxn, Workload: WorkloadAppend, Txn: randomTxn(rng, pick)}
		b, err := op.Marshal()
		require.NoError(t, err)
		var back Op
		require.NoError(t, json.Unmarshal(b, &back), "%s", b)
		if len(op.Txn) == 0 {
			assert.Empty(t, back.Txn)
			continue
		}
		require.Len(t, back.Txn, len(op.Txn), "%s", b)
		for i, m := range op.Txn {
			got := back.Txn[i]
			assert.Equal(t, m.F, got.F)
			assert.Equal(t, m.Key, got.Key)
			if m.IsRead() {
				assert.Equal(t, m.Read == nil, got.Read == nil, "%s: null and [] differ", b)
				assert.Equal(t, len(m.Read), len(got.Read))
				for j := range m.Read {
					assert.Equal(t, m.Read[j], got.Read[j])
				}
			} else {
				assert.Equal(t, m.Value, got.Value)
			}
		}
	}
}

func TestMopJSONShape(t *testing.T) {
	op := Op{V: 1, Process: 2, Type: OK, F: FTxn, Workload: WorkloadAppend,
		Txn: []Mop{Append(1, 2), ReadOf(1, []int64{2}), ReadOf(3, []int64{}), ReadOf(4, nil)}}
	b, err := op.Marshal()
	require.NoError(t, err)
	assert.Contains(t, string(b), `"txn":[["append",1,2],["r",1,[2]],["r",3,[]],["r",4,null]]`)
	for _, bad := range []string{`["append",1]`, `["append",1,null]`, `["r",1,5]`, `["append",1,[2]]`, `[1,2,3]`, `{}`} {
		var m Mop
		assert.Error(t, json.Unmarshal([]byte(bad), &m), bad)
	}
}
