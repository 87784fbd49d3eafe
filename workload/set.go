package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/strongcheck/strongcheck/results"
)

const (
	setTable   = "sc_set"
	setAddSQL  = "INSERT INTO sc_set (elem) VALUES ($1)"
	setReadSQL = "SELECT elem FROM sc_set ORDER BY elem"
)

// set is the RPO ledger: every acknowledged add must be in every final read.
type set struct {
	opts    Options
	next    atomic.Int64 // last element handed out; elements start at 1
	lastLen atomic.Int64 // size of the last read, to size the next one
}

func newSet(o Options) *set { return &set{opts: o} }

func (s *set) Name() string { return results.WorkloadSet }

func (s *set) Setup(ctx context.Context, c *Conn) ([]results.Op, error) {
	err := setupTx(ctx, c,
		"DROP TABLE IF EXISTS "+setTable,
		"CREATE TABLE "+setTable+" (elem bigint PRIMARY KEY)",
		grant(s.opts.Grantee, setTable))
	if err != nil {
		return nil, fmt.Errorf("set setup: %w", err)
	}
	return nil, nil
}

func (s *set) Next(rng *rand.Rand) (results.Op, bool) {
	op := results.Op{Type: results.Invoke, Workload: results.WorkloadSet}
	if rng.Float64() < s.opts.ReadFraction {
		op.F = results.FRead
		return op, false
	}
	op.F = results.FAdd
	op.Value = results.Int(s.next.Add(1))
	return op, true
}

func (s *set) Do(ctx context.Context, c *Conn, op results.Op) results.Op {
	c.beginOp()
	switch op.F {
	case results.FRead:
		vals, err := s.readAll(ctx, c)
		if err == nil {
			op.Values = vals
		}
		return complete(c, op, err, PhaseRead)
	case results.FAdd:
		if op.Value == nil {
			return complete(c, op, fmt.Errorf("%w: add without value", ErrNoRow), PhaseWrite)
		}
		_, err := c.pg.Exec(ctx, setAddSQL, *op.Value)
		return complete(c, op, err, PhaseWrite)
	}
	return complete(c, op, fmt.Errorf("%w: set has no function %q", ErrNoRow, op.F), PhaseWrite)
}

// readAll returns every element, sorted, in one statement (one snapshot).
// The history's omitempty drops an empty Values: an ok read or final with
// no "values" is the empty set.
func (s *set) readAll(ctx context.Context, c *Conn) ([]int64, error) {
	vals, err := readInts(ctx, c.pg, setReadSQL, int(s.lastLen.Load())+64)
	if err != nil {
		return nil, err
	}
	s.lastLen.Store(int64(len(vals)))
	return vals, nil
}

func (s *set) Final(ctx context.Context, c *Conn) ([]results.Op, error) {
	vals, err := s.readAll(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("set final: %w", err)
	}
	return []results.Op{finalOp(results.WorkloadSet, results.Op{Values: vals})}, nil
}
