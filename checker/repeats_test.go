package checker

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/internal/histgen"
	"github.com/strongcheck/strongcheck/results"
)

// smallValueHistory is a register history over one key written with small
// values that repeat, as Jepsen writes them: procs clients, each operation
// taking effect at a random instant inside its call (so the history is
// linearizable), some ending info. With corrupt, some reads return a value
// the register did not hold.
func smallValueHistory(seed uint64, n, procs int, corrupt bool) []results.Op {
	rng := rand.New(rand.NewPCG(seed, 3))
	type event struct {
		t   int64
		op  results.Op
		lin bool // the linearization point: apply
		p   int
	}
	state := int64(0)
	var evs []event
	for i := range n {
		p := i % procs
		inv := int64(i/procs)*100 + int64(rng.IntN(40))
		lin := inv + 1 + int64(rng.IntN(60))
		comp := lin + 1 + int64(rng.IntN(60))
		op := results.Op{Process: results.Process(p + procs*(i/procs)), Workload: results.WorkloadRegister, Key: "k0"}
		switch rng.IntN(3) {
		case 0:
			op.F = results.FRead
		case 1:
			op.F, op.Value = results.FWrite, results.Int(rng.Int64N(4))
		default:
			op.F, op.Value, op.Expect = results.FCAS, results.Int(rng.Int64N(4)), results.Int(rng.Int64N(4))
		}
		evs = append(evs, event{t: inv, op: op}, event{t: lin, op: op, lin: true}, event{t: comp, op: op, p: 1})
	}
	// Apply in time order; completions learn what happened.
	for range 3 {
		for i := 1; i < len(evs); i++ {
			for j := i; j > 0 && evs[j].t < evs[j-1].t; j-- {
				evs[j], evs[j-1] = evs[j-1], evs[j]
			}
		}
	}
	results_ := map[results.Process]results.Op{}
	var out []results.Op
	for _, e := range evs {
		op := e.op
		switch {
		case e.lin:
			c := op
			c.Type = results.OK
			switch op.F {
			case results.FRead:
				v := state
				if corrupt && rng.IntN(40) == 0 {
					v = 7
				}
				c.Value = results.Int(v)
			case results.FWrite:
				state = *op.Value
			default:
				if state == *op.Expect {
					state = *op.Value
				} else {
					c.Type = results.Fail
				}
			}
			if op.F != results.FRead && rng.IntN(10) == 0 {
				c.Type = results.Info
			}
			results_[op.Process] = c
		case e.p == 0:
			op.Type = results.Invoke
			if op.F == results.FRead {
				op.Value = nil
			}
			out = append(out, op)
		default:
			out = append(out, results_[op.Process])
		}
	}
	for i := range out {
		out[i].V, out[i].Index, out[i].Time = results.SchemaVersion, int64(i), int64(i)*10
	}
	return out
}

// With repeated values the linearizability check (of every read, as for a
// Jepsen history) prunes nothing and agrees with porcupine run directly on
// every operation; the checks that need unique values say unknown.
func TestRepeatedRegisterValues(t *testing.T) {
	agree := map[porcupine.CheckResult]int{}
	for seed := range uint64(120) {
		ops := smallValueHistory(seed, 60, 4, seed%2 == 1)
		want := porcupine.CheckOperationsTimeout(rawModel, rawOperations(ops, false, ""), 10*time.Second)
		l := CheckLinearizable(context.Background(), ops, Options{Timeout: 10 * time.Second})
		lin := &l
		require.Zero(t, lin.Linearizable.Pruned, "seed %d: nothing pruned", seed)
		switch want {
		case porcupine.Ok:
			require.Equal(t, Valid, lin.Verdict, "seed %d: %s", seed, lin.Summary)
		case porcupine.Illegal:
			require.Equal(t, Invalid, lin.Verdict, "seed %d: %s", seed, lin.Summary)
		}
		agree[want]++
		res := CheckHistory(context.Background(), &results.History{Ops: ops}, Options{Timeout: 10 * time.Second})
		for _, name := range []string{NameStaleRead, NameRPO} {
			c := res.Find(name)
			require.NotNil(t, c, name)
			assert.Equal(t, Unknown, c.Verdict, "%s with repeated values", name)
			assert.Contains(t, c.Error, "repeat")
		}
	}
	t.Logf("porcupine's verdicts matched: %v", agree)
	require.Positive(t, agree[porcupine.Ok])
	require.Positive(t, agree[porcupine.Illegal])
}

// Unique values (the harness's own histories) keep the pruning and every
// check.
func TestUniqueValuesAreNotRepeats(t *testing.T) {
	ops := histgen.Register(5, 3000, histgen.RegisterOptions{Final: true})
	h := index(ops)
	assert.False(t, indexRegister(h).repeats)
	res := CheckHistory(context.Background(), &results.History{Ops: ops}, Options{})
	assert.Equal(t, Valid, res.Verdict, "%+v", res.Checks)
	assert.Positive(t, res.Find(NameLinearizable).Linearizable.Pruned)
}
