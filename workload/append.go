package workload

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strongcheck/strongcheck/results"
)

// The list-append workload's table and statements. A key's list is one
// row, so that a read returns the whole list in one statement and an
// append extends it in one: INSERT ... ON CONFLICT takes the row lock, so
// concurrent appends to one key queue up (read committed) or fail with a
// serialization failure (repeatable read, serializable).
const (
	appendTable     = "sc_append"
	appendSQL       = "INSERT INTO sc_append AS t (k, vals) VALUES ($1, ARRAY[$2::bigint]) ON CONFLICT (k) DO UPDATE SET vals = t.vals || EXCLUDED.vals"
	appendReadSQL   = "SELECT vals FROM sc_append WHERE k = $1"
	appendFinalSQL  = "SELECT k, vals FROM sc_append ORDER BY k"
	appendCreateSQL = "CREATE TABLE " + appendTable + " (k bigint PRIMARY KEY, vals bigint[] NOT NULL)"
)

// Isolation levels of --isolation (results.Isolation's).
const (
	ReadCommitted  = results.ReadCommitted
	RepeatableRead = results.RepeatableRead
	Serializable   = results.Serializable
)

// StandbyIsolation is the level the list-append workload's read-only
// transactions run at where the server is a hot standby, for a run at
// level: PostgreSQL refuses SERIALIZABLE there ("cannot use serializable
// mode in a hot standby", SQLSTATE 0A000), so such a transaction is begun
// again at REPEATABLE READ, the strictest level a standby offers, in the
// same operation. The other levels run as they are.
func StandbyIsolation(level results.Isolation) results.Isolation {
	if level == Serializable {
		return RepeatableRead
	}
	return level
}

func pgxIsolation(level results.Isolation) pgx.TxIsoLevel {
	switch level {
	case ReadCommitted:
		return pgx.ReadCommitted
	case RepeatableRead:
		return pgx.RepeatableRead
	}
	return pgx.Serializable
}

// listAppend is Elle's list-append workload: transactions of one to
// MaxTxnLen micro-operations, each an append of a unique element to a key
// or a read of a key's whole list, over Keys keys in use at a time; a key
// retires after MaxWritesPerKey appends and a new one takes its place, so
// lists stay short.
type listAppend struct {
	opts Options
	next atomic.Int64 // last element handed out; elements start at 1
	mu   sync.Mutex
	// active are the keys in use; writes the appends each has been given.
	active  []int64
	writes  []int
	nextKey int64
}

func newListAppend(o Options) *listAppend {
	a := &listAppend{opts: o, active: make([]int64, o.Keys), writes: make([]int, o.Keys)}
	for i := range a.active {
		a.active[i] = int64(i)
	}
	a.nextKey = int64(o.Keys)
	return a
}

func (a *listAppend) Name() string { return results.WorkloadAppend }

func (a *listAppend) Setup(ctx context.Context, c *Conn) ([]results.Op, error) {
	err := setupTx(ctx, c, "DROP TABLE IF EXISTS "+appendTable, appendCreateSQL, grant(a.opts.Grantee, appendTable))
	if err != nil {
		return nil, fmt.Errorf("append setup: %w", err)
	}
	return nil, nil
}

// Next draws a transaction: read-only with probability ReadFraction (it may
// go to a standby), else a mix of appends and reads with at least one
// append (it goes to the primary). Its micro-operations touch keys in
// ascending order.
func (a *listAppend) Next(rng *rand.Rand) (results.Op, bool) {
	n := 1 + rng.IntN(a.opts.MaxTxnLen)
	readOnly := rng.Float64() < a.opts.ReadFraction
	a.mu.Lock()
	var mops []results.Mop
	if readOnly && a.opts.ReadAllKeys {
		mops = make([]results.Mop, len(a.active))
		for i, k := range a.active {
			mops[i] = results.ReadOf(k, nil)
		}
	} else {
		mops = a.draw(rng, n, readOnly)
	}
	a.mu.Unlock()
	// Keys in ascending order: row locks are then always taken in one
	// order and transactions never deadlock (PostgreSQL takes
	// deadlock_timeout, a second by default, to break each deadlock).
	slices.SortStableFunc(mops, func(x, y results.Mop) int { return cmp.Compare(x.Key, y.Key) })
	return results.Op{Type: results.Invoke, F: results.FTxn, Workload: results.WorkloadAppend, Txn: mops}, !readOnly
}

// draw returns n micro-operations on random keys in use: reads only when
// readOnly, else at least one append. The caller holds a.mu.
func (a *listAppend) draw(rng *rand.Rand, n int, readOnly bool) []results.Mop {
	mops := make([]results.Mop, n)
	appendAt := -1
	if !readOnly {
		appendAt = rng.IntN(n) // at least this one appends
	}
	for i := range mops {
		slot := rng.IntN(len(a.active))
		k := a.active[slot]
		if readOnly || (i != appendAt && rng.IntN(2) == 0) {
			mops[i] = results.ReadOf(k, nil)
			continue
		}
		mops[i] = results.Append(k, a.next.Add(1))
		if a.writes[slot]++; a.writes[slot] >= a.opts.MaxWritesPerKey {
			a.active[slot], a.writes[slot] = a.nextKey, 0
			a.nextKey++
		}
	}
	return mops
}

func (a *listAppend) Do(ctx context.Context, c *Conn, op results.Op) results.Op {
	c.beginOp()
	if op.F != results.FTxn {
		return complete(c, op, fmt.Errorf("%w: append has no function %q", ErrNoRow, op.F), PhaseTx)
	}
	readOnly := true
	for _, m := range op.Txn {
		if !m.IsRead() {
			readOnly = false
		}
	}
	done, phase, err := a.run(ctx, c, op.Txn, readOnly)
	if err == nil {
		op.Txn = done
	}
	return complete(c, op, err, phase)
}

// run performs the transaction and returns its micro-operations with the
// lists read, and the phase of its error. A read-only transaction's every
// error is fail (PhaseRead): it changed nothing.
func (a *listAppend) run(ctx context.Context, c *Conn, txn []results.Mop, readOnly bool) ([]results.Mop, Phase, error) {
	level := a.opts.Isolation
	txo := pgx.TxOptions{IsoLevel: pgxIsolation(level)}
	if readOnly {
		txo.AccessMode = pgx.ReadOnly
	}
	tx, err := c.pg.BeginTx(ctx, txo)
	if err != nil && readOnly && level == Serializable && refusedOnStandby(err) {
		txo.IsoLevel = pgxIsolation(StandbyIsolation(level))
		tx, err = c.pg.BeginTx(ctx, txo)
	}
	if err != nil {
		return nil, PhaseTx, err
	}
	abort := func(err error) ([]results.Mop, Phase, error) {
		// COMMIT was never sent: nothing committed. A failed rollback
		// closes the connection (pgx), which the worker sees.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return nil, PhaseTx, err
	}
	out := make([]results.Mop, len(txn))
	for i, m := range txn {
		if out[i], err = RunMop(ctx, tx, m); err != nil {
			return abort(err)
		}
	}
	phase := PhaseCommit
	if readOnly {
		phase = PhaseRead
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, phase, err
	}
	return out, phase, nil
}

// RunMop runs one micro-operation of a list-append transaction in tx with
// the workload's own statements and returns it with the list it read (an
// append comes back as it went). A key without a row reads as the empty
// list. Do runs every transaction through it; it is exported for tests
// that drive a transaction one statement at a time.
func RunMop(ctx context.Context, tx pgx.Tx, m results.Mop) (results.Mop, error) {
	if !m.IsRead() {
		_, err := tx.Exec(ctx, appendSQL, m.Key, m.Value)
		return m, err
	}
	var vals []int64
	err := tx.QueryRow(ctx, appendReadSQL, m.Key).Scan(&vals)
	switch {
	case errors.Is(err, pgx.ErrNoRows), err == nil && vals == nil:
		vals = []int64{}
	case err != nil:
		return m, err
	}
	m.Read = vals
	return m, nil
}

// refusedOnStandby reports PostgreSQL's refusal of a serializable
// transaction on a hot standby.
func refusedOnStandby(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "0A000" && strings.Contains(pe.Message, "hot standby")
}

func (a *listAppend) Final(ctx context.Context, c *Conn) ([]results.Op, error) {
	rows, err := c.pg.Query(ctx, appendFinalSQL)
	if err != nil {
		return nil, fmt.Errorf("append final: %w", err)
	}
	defer rows.Close()
	var txn []results.Mop
	for rows.Next() {
		var k int64
		var vals []int64
		if err := rows.Scan(&k, &vals); err != nil {
			return nil, fmt.Errorf("append final: %w", err)
		}
		if vals == nil {
			vals = []int64{}
		}
		txn = append(txn, results.ReadOf(k, vals))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("append final: %w", err)
	}
	return []results.Op{finalOp(results.WorkloadAppend, results.Op{Txn: txn})}, nil
}
