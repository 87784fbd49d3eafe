package workload

import (
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
)

func TestNew(t *testing.T) {
	assert.Equal(t, []string{"append", "bank", "register", "set"}, Names())
	for _, n := range Names() {
		w, err := New(n, Options{})
		require.NoError(t, err)
		assert.Equal(t, n, w.Name())
	}
	bad := []struct {
		name string
		opts Options
		want error
	}{
		{"nosuch", Options{}, ErrUnknownWorkload},
		{"", Options{}, ErrUnknownWorkload},
		{"register", Options{Keys: -1}, ErrOptions},
		{"bank", Options{Accounts: 1}, ErrOptions},
		{"bank", Options{MaxTransfer: -3}, ErrOptions},
		{"register", Options{ReadFraction: 0.9, CASFraction: 0.2}, ErrOptions},
		{"set", Options{ReadFraction: -0.1}, ErrOptions},
		{"append", Options{Isolation: "snapshot"}, ErrOptions},
		{"append", Options{MaxTxnLen: 11}, ErrOptions},
		{"append", Options{MaxWritesPerKey: -1}, ErrOptions},
	}
	for _, tc := range bad {
		_, err := New(tc.name, tc.opts)
		assert.ErrorIs(t, err, tc.want, "%s %+v", tc.name, tc.opts)
	}
}

// draw returns n invokes of a fresh workload from seed.
func draw(t *testing.T, name string, opts Options, seed uint64, n int) ([]results.Op, []bool) {
	t.Helper()
	w, err := New(name, opts)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(seed, seed))
	ops, writes := make([]results.Op, n), make([]bool, n)
	for i := range ops {
		ops[i], writes[i] = w.Next(rng)
	}
	return ops, writes
}

func TestNextDeterministic(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			a, wa := draw(t, name, Options{ReadFraction: 0.3}, 42, 500)
			b, wb := draw(t, name, Options{ReadFraction: 0.3}, 42, 500)
			c, _ := draw(t, name, Options{ReadFraction: 0.3}, 43, 500)
			assert.Equal(t, a, b)
			assert.Equal(t, wa, wb)
			assert.NotEqual(t, a, c, "another seed should draw other operations")
		})
	}
}

// writeIDs are the run-unique numbers of a write invoke: register value,
// set element, bank transfer id, list-append elements; none for reads.
func writeIDs(op results.Op) []int64 {
	switch {
	case op.Transfer != nil:
		return []int64{op.Transfer.ID}
	case op.F == results.FRead:
		return nil
	case op.Value != nil:
		return []int64{*op.Value}
	case op.F == results.FTxn:
		var out []int64
		for _, m := range op.Txn {
			if !m.IsRead() {
				out = append(out, m.Value)
			}
		}
		return out
	}
	return []int64{-1}
}

func TestNextUniqueUnderConcurrency(t *testing.T) {
	const workers, per = 8, 3000
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			w, err := New(name, Options{})
			require.NoError(t, err)
			ids := make([][]int64, workers)
			var wg sync.WaitGroup
			for i := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(i), 7))
					for range per {
						op, write := w.Next(rng)
						if write {
							ids[i] = append(ids[i], writeIDs(op)...)
						}
					}
				})
			}
			wg.Wait()
			seen := map[int64]bool{}
			total := 0
			for _, l := range ids {
				for _, id := range l {
					require.Positive(t, id)
					require.False(t, seen[id], "id %d drawn twice", id)
					seen[id] = true
					total++
				}
			}
			// Unique and dense: ids are exactly 1..total.
			for id := int64(1); id <= int64(total); id++ {
				require.True(t, seen[id], "id %d missing", id)
			}
		})
	}
}

func TestNextMix(t *testing.T) {
	const n = 20000
	count := func(ops []results.Op, writes []bool) map[string]float64 {
		m := map[string]float64{}
		for i, op := range ops {
			m[op.F] += 1.0 / n
			assert.Equal(t, op.F != results.FRead, writes[i], "write flag of %s", op.F)
			assert.Equal(t, results.Invoke, op.Type)
		}
		return m
	}
	m := count(draw(t, "register", Options{}, 1, n))
	assert.InDelta(t, 0.5, m[results.FRead], 0.02)
	assert.InDelta(t, 0.3, m[results.FWrite], 0.02)
	assert.InDelta(t, 0.2, m[results.FCAS], 0.02)

	m = count(draw(t, "set", Options{}, 1, n))
	assert.InDelta(t, 0.05, m[results.FRead], 0.01)
	assert.InDelta(t, 0.95, m[results.FAdd], 0.01)

	m = count(draw(t, "bank", Options{ReadFraction: 0.25}, 1, n))
	assert.InDelta(t, 0.25, m[results.FRead], 0.02)

	for name, f := range map[string]string{"register": results.FWrite, "set": results.FAdd, "bank": results.FTransfer} {
		m := count(draw(t, name, Options{WritesOnly: true}, 1, n))
		assert.InDelta(t, 1.0, m[f], 1e-9, "%s writes only", name)
	}
}

func TestNextFields(t *testing.T) {
	ops, _ := draw(t, "register", Options{Keys: 3}, 5, 2000)
	keys := map[string]bool{}
	for _, op := range ops {
		assert.Equal(t, results.WorkloadRegister, op.Workload)
		keys[op.Key] = true
		assert.Equal(t, op.F == results.FCAS, op.Expect != nil, "expect only on cas")
		assert.Equal(t, op.F != results.FRead, op.Value != nil, "value only on writes")
	}
	assert.Equal(t, map[string]bool{"k0": true, "k1": true, "k2": true}, keys)

	ops, _ = draw(t, "bank", Options{Accounts: 3, MaxTransfer: 4, WritesOnly: true}, 5, 2000)
	amounts := map[int64]bool{}
	for _, op := range ops {
		tr := op.Transfer
		require.NotNil(t, tr)
		assert.NotEqual(t, tr.From, tr.To)
		assert.True(t, tr.From >= 0 && tr.From < 3 && tr.To >= 0 && tr.To < 3, "%+v", tr)
		amounts[tr.Amount] = true
	}
	assert.Equal(t, map[int64]bool{1: true, 2: true, 3: true, 4: true}, amounts)
}

func TestPgbenchWriteScript(t *testing.T) {
	s := PgbenchWriteScript(4)
	assert.Contains(t, s, `\set k random(0, 3)`)
	assert.Contains(t, s, "UPDATE sc_register SET val = :v WHERE id = :k;")
}

// List-append transactions: 1 to MaxTxnLen micro-operations, read-only
// ones (ReadFraction of them) marked as reads, every other one with an
// append; a key takes at most MaxWritesPerKey appends and then retires.
func TestNextListAppend(t *testing.T) {
	const n = 20000
	ops, writes := draw(t, "append", Options{Keys: 3, MaxTxnLen: 6, MaxWritesPerKey: 5}, 9, n)
	perKey := map[int64]int{}
	readOnly := 0
	lens := map[int]bool{}
	for i, op := range ops {
		require.Equal(t, results.FTxn, op.F)
		require.Equal(t, results.WorkloadAppend, op.Workload)
		lens[len(op.Txn)] = true
		appends := 0
		for _, m := range op.Txn {
			if m.IsRead() {
				assert.Nil(t, m.Read, "an invoke's reads are unknown")
				continue
			}
			appends++
			perKey[m.Key]++
		}
		assert.Equal(t, appends > 0, writes[i])
		if appends == 0 {
			readOnly++
		}
	}
	assert.InDelta(t, 0.5, float64(readOnly)/n, 0.02)
	assert.Equal(t, map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true}, lens)
	for k, c := range perKey {
		assert.LessOrEqual(t, c, 5, "key %d", k)
	}
	assert.Greater(t, len(perKey), 1000, "keys rotate")
}

// With ReadAllKeys a read-only transaction reads every key in use once, in
// ascending order: the keys the write transactions around it append to.
func TestNextListAppendReadAllKeys(t *testing.T) {
	ops, writes := draw(t, "append", Options{Keys: 4, MaxTxnLen: 3, MaxWritesPerKey: 2, ReadAllKeys: true}, 11, 2000)
	newest := int64(-1) // the highest key appended to so far
	readOnly := 0
	for i, op := range ops {
		if writes[i] {
			for _, m := range op.Txn {
				if !m.IsRead() {
					newest = max(newest, m.Key)
				}
			}
			continue
		}
		readOnly++
		require.Len(t, op.Txn, 4, "op %d", i)
		for j, m := range op.Txn {
			require.True(t, m.IsRead())
			if j > 0 {
				require.Less(t, op.Txn[j-1].Key, m.Key, "ascending, each key once")
			}
		}
		// Keys retire after two appends: the reads follow the rotation.
		assert.LessOrEqual(t, newest, op.Txn[3].Key, "op %d reads the keys in use", i)
	}
	assert.Greater(t, readOnly, 800)
	assert.Greater(t, newest, int64(500), "keys rotated")
}
