package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"

	"github.com/strongcheck/strongcheck/results"
)

const (
	setTable     = "sc_set"
	setAddSQL    = "INSERT INTO sc_set (elem) VALUES ($1)"
	setRangeSQL  = "SELECT elem FROM sc_set WHERE elem BETWEEN $1 AND $2 ORDER BY elem"
	setFinalSQL  = "SELECT elem FROM sc_set ORDER BY elem"
	setWindow    = 128 // elements a read covers
	setRecentPct = 75  // share of reads over the most recent elements
)

// set is the RPO ledger: every acknowledged add must be in every final
// read. A read covers a window of setWindow elements, the most recent ones
// handed out (most reads) or a window drawn at random among all of them,
// so that it costs the server and the history the same at any run length
// and still sees what a failover lost; the final read covers every
// element. Reads record the window and the elements missing from it.
type set struct {
	opts Options
	next atomic.Int64 // last element handed out; elements start at 1
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
		op.Lo, op.Hi = s.window(rng)
		return op, false
	}
	op.F = results.FAdd
	op.Value = results.Int(s.next.Add(1))
	return op, true
}

// window picks the elements a read covers.
func (s *set) window(rng *rand.Rand) (lo, hi int64) {
	top := max(s.next.Load(), 1)
	hi = top
	if rng.IntN(100) >= setRecentPct && top > setWindow {
		hi = setWindow + rng.Int64N(top-setWindow+1)
	}
	return max(1, hi-setWindow+1), hi
}

func (s *set) Do(ctx context.Context, c *Conn, op results.Op) results.Op {
	c.beginOp()
	switch op.F {
	case results.FRead:
		if op.Lo < 1 || op.Hi < op.Lo {
			return complete(c, op, fmt.Errorf("%w: read of elements [%d, %d]", ErrNoRow, op.Lo, op.Hi), PhaseRead)
		}
		missing, extra, err := s.readRange(ctx, c, setRangeSQL, op.Lo, op.Hi, op.Lo, op.Hi)
		if err == nil {
			op.Missing, op.Values = missing, extra
		}
		return complete(c, op, err, PhaseRead)
	case results.FAdd:
		if op.Value == nil {
			return complete(c, op, fmt.Errorf("%w: add without value", ErrNoRow), PhaseWrite)
		}
		_, err := c.execStmt(ctx, fastSetAdd, *op.Value)
		return complete(c, op, err, PhaseWrite)
	}
	return complete(c, op, fmt.Errorf("%w: set has no function %q", ErrNoRow, op.F), PhaseWrite)
}

// readRange runs a read of elements in one statement (one snapshot) and
// returns the elements of [lo, hi] it lacks and those it found outside.
// The rows are streamed, never held: the final read of a long run covers
// millions of elements.
func (s *set) readRange(ctx context.Context, c *Conn, sql string, lo, hi int64, args ...any) (missing, extra []int64, err error) {
	rows, err := c.pg.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	want := lo // the next element expected
	for rows.Next() {
		var e int64
		if err := rows.Scan(&e); err != nil {
			return nil, nil, err
		}
		if e < lo || e > hi {
			extra = append(extra, e)
			continue
		}
		for ; want < e; want++ {
			missing = append(missing, want)
		}
		if e == want {
			want++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	for ; want <= hi; want++ {
		missing = append(missing, want)
	}
	return missing, extra, nil
}

func (s *set) Final(ctx context.Context, c *Conn) ([]results.Op, error) {
	hi := s.next.Load() // 0 when nothing was added: an empty range
	missing, extra, err := s.readRange(ctx, c, setFinalSQL, 1, hi)
	if err != nil {
		return nil, fmt.Errorf("set final: %w", err)
	}
	return []results.Op{finalOp(results.WorkloadSet, results.Op{Lo: 1, Hi: hi, Missing: missing, Values: extra})}, nil
}
