package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/results"
)

const (
	bankAccounts = "sc_bank_accounts"
	bankLog      = "sc_bank_log"
	// The debit only matches when the balance covers the amount, so an
	// overdraft affects no row and the transfer is rolled back.
	bankDebitSQL  = "UPDATE sc_bank_accounts SET balance = balance - $2 WHERE id = $1 AND balance >= $2"
	bankCreditSQL = "UPDATE sc_bank_accounts SET balance = balance + $2 WHERE id = $1"
	bankLogSQL    = "INSERT INTO sc_bank_log (id, from_acct, to_acct, amount) VALUES ($1, $2, $3, $4)"
	// One statement reads one snapshot in any isolation level, so the read
	// needs no BEGIN/COMMIT around it.
	bankReadSQL   = "SELECT balance FROM sc_bank_accounts ORDER BY id"
	bankLogIDsSQL = "SELECT id FROM sc_bank_log ORDER BY id"
)

var (
	bankTxOptions    = pgx.TxOptions{IsoLevel: pgx.RepeatableRead}
	bankFinalOptions = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

type bank struct {
	opts Options
	next atomic.Int64 // last transfer id handed out; ids start at 1
}

func newBank(o Options) *bank { return &bank{opts: o} }

func (b *bank) Name() string { return results.WorkloadBank }

func (b *bank) Setup(ctx context.Context, c *Conn) ([]results.Op, error) {
	var ins strings.Builder
	ins.WriteString("INSERT INTO " + bankAccounts + " (id, balance) VALUES ")
	balances := make([]int64, b.opts.Accounts)
	for i := range balances {
		balances[i] = b.opts.InitialBalance
		if i > 0 {
			ins.WriteString(", ")
		}
		fmt.Fprintf(&ins, "(%d, %d)", i, b.opts.InitialBalance)
	}
	err := setupTx(ctx, c,
		"DROP TABLE IF EXISTS "+bankAccounts+", "+bankLog,
		"CREATE TABLE "+bankAccounts+" (id integer PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0))",
		"CREATE TABLE "+bankLog+" (id bigint PRIMARY KEY, from_acct integer NOT NULL, to_acct integer NOT NULL, amount bigint NOT NULL)",
		ins.String(),
		grant(b.opts.Grantee, bankAccounts, bankLog))
	if err != nil {
		return nil, fmt.Errorf("bank setup: %w", err)
	}
	return []results.Op{{Process: results.HarnessProcess, Type: results.OK, F: results.FInit,
		Workload: results.WorkloadBank, Values: balances}}, nil
}

func (b *bank) Next(rng *rand.Rand) (results.Op, bool) {
	op := results.Op{Type: results.Invoke, Workload: results.WorkloadBank}
	if rng.Float64() < b.opts.ReadFraction {
		op.F = results.FRead
		return op, false
	}
	n := b.opts.Accounts
	from := rng.IntN(n)
	to := rng.IntN(n - 1)
	if to >= from {
		to++
	}
	op.F = results.FTransfer
	op.Transfer = &results.Transfer{ID: b.next.Add(1), From: from, To: to, Amount: 1 + rng.Int64N(b.opts.MaxTransfer)}
	return op, true
}

func (b *bank) Do(ctx context.Context, c *Conn, op results.Op) results.Op {
	c.beginOp()
	switch op.F {
	case results.FRead:
		vals, err := b.balances(ctx, c.pg)
		if err == nil {
			op.Values = vals
		}
		return complete(c, op, err, PhaseRead)
	case results.FTransfer:
		if op.Transfer == nil {
			return complete(c, op, fmt.Errorf("%w: transfer without details", ErrNoRow), PhaseTx)
		}
		phase, err := b.transfer(ctx, c, op.Transfer)
		return complete(c, op, err, phase)
	}
	return complete(c, op, fmt.Errorf("%w: bank has no function %q", ErrNoRow, op.F), PhaseTx)
}

// transfer runs t in one REPEATABLE READ transaction and returns the phase
// its error (if any) arose in.
func (b *bank) transfer(ctx context.Context, c *Conn, t *results.Transfer) (Phase, error) {
	tx, err := c.pg.BeginTx(ctx, bankTxOptions)
	if err != nil {
		return PhaseTx, err
	}
	abort := func(err error) (Phase, error) {
		// COMMIT was never sent: whatever Rollback says, nothing committed.
		// A failed rollback closes the connection (pgx), which the worker
		// sees in Conn.IsClosed.
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return PhaseTx, err
	}
	// Lock the two rows in account order, so that opposite transfers
	// conflict (40001, fail) instead of deadlocking for deadlock_timeout.
	debit := func() error {
		tag, err := tx.Exec(ctx, bankDebitSQL, t.From, t.Amount)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%w: account %d has less than %d", ErrInsufficientFunds, t.From, t.Amount)
		}
		return err
	}
	credit := func() error {
		tag, err := tx.Exec(ctx, bankCreditSQL, t.To, t.Amount)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("%w: account %d", ErrNoRow, t.To)
		}
		return err
	}
	first, second := debit, credit
	if t.To < t.From {
		first, second = credit, debit
	}
	if err := first(); err != nil {
		return abort(err)
	}
	if err := second(); err != nil {
		return abort(err)
	}
	if _, err := tx.Exec(ctx, bankLogSQL, t.ID, t.From, t.To, t.Amount); err != nil {
		return abort(err)
	}
	return PhaseCommit, tx.Commit(ctx)
}

// balances reads every balance, by account number, in one statement.
func (b *bank) balances(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]int64, error) {
	return readInts(ctx, q, bankReadSQL, b.opts.Accounts)
}

func readInts(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, sql string, sizeHint int) ([]int64, error) {
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]int64, 0, sizeHint)
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (b *bank) Final(ctx context.Context, c *Conn) ([]results.Op, error) {
	tx, err := c.pg.BeginTx(ctx, bankFinalOptions)
	if err != nil {
		return nil, fmt.Errorf("bank final: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only; after Commit a no-op
	bal, err := b.balances(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("bank final balances: %w", err)
	}
	ids, err := readInts(ctx, tx, bankLogIDsSQL, int(b.next.Load()))
	if err != nil {
		return nil, fmt.Errorf("bank final log: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("bank final: %w", err)
	}
	return []results.Op{finalOp(results.WorkloadBank, results.Op{Values: bal, IDs: ids})}, nil
}
