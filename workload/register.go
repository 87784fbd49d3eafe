package workload

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/results"
)

// The register's table and statements. Each write and cas is one
// autocommit statement: one round trip with the prepared statement.
const (
	registerTable = "sc_register"
	// RegisterWriteSQL is the register's write: $1 the key's number (key
	// "k3" is row 3), $2 the value.
	RegisterWriteSQL = "UPDATE sc_register SET val = $2 WHERE id = $1"
	registerCASSQL   = "UPDATE sc_register SET val = $3 WHERE id = $1 AND val = $2"
	registerReadSQL  = "SELECT val FROM sc_register WHERE id = $1"
	registerFinalSQL = "SELECT id, val FROM sc_register"
)

type register struct {
	opts  Options
	keys  []string       // "k0", "k1", ...
	index map[string]int // key -> position in keys
	next  atomic.Int64   // last value handed out; values start at 1
	// last[i] is the last value known to be in key i (an ok read, write or
	// cas): a cas expects it, so that cas succeeds often enough to matter.
	last []atomic.Int64
}

func newRegister(o Options) *register {
	r := &register{opts: o, keys: make([]string, o.Keys), index: make(map[string]int, o.Keys),
		last: make([]atomic.Int64, o.Keys)}
	for i := range r.keys {
		r.keys[i] = "k" + strconv.Itoa(i)
		r.index[r.keys[i]] = i
	}
	return r
}

func (r *register) Name() string { return results.WorkloadRegister }

func (r *register) Setup(ctx context.Context, c *Conn) ([]results.Op, error) {
	var ins strings.Builder
	ins.WriteString("INSERT INTO sc_register (id, val) VALUES ")
	for i := range r.keys {
		if i > 0 {
			ins.WriteString(", ")
		}
		fmt.Fprintf(&ins, "(%d, 0)", i)
	}
	err := setupTx(ctx, c,
		"DROP TABLE IF EXISTS "+registerTable,
		"CREATE TABLE "+registerTable+" (id integer PRIMARY KEY, val bigint NOT NULL)",
		ins.String(),
		grant(r.opts.Grantee, registerTable))
	if err != nil {
		return nil, fmt.Errorf("register setup: %w", err)
	}
	return nil, nil
}

func (r *register) Next(rng *rand.Rand) (results.Op, bool) {
	k := rng.IntN(len(r.keys))
	op := results.Op{Type: results.Invoke, Workload: results.WorkloadRegister, Key: r.keys[k]}
	x := rng.Float64()
	switch {
	case x < r.opts.ReadFraction:
		op.F = results.FRead
		return op, false
	case x < r.opts.ReadFraction+r.opts.CASFraction:
		op.F = results.FCAS
		op.Expect = results.Int(r.last[k].Load())
	default:
		op.F = results.FWrite
	}
	op.Value = results.Int(r.next.Add(1))
	return op, true
}

func (r *register) Do(ctx context.Context, c *Conn, op results.Op) results.Op {
	c.beginOp()
	k, known := r.index[op.Key]
	switch op.F {
	case results.FRead:
		if !known {
			return complete(c, op, fmt.Errorf("%w: key %q", ErrNoRow, op.Key), PhaseRead)
		}
		v, err := readOne(ctx, c, k)
		if err == nil {
			op.Value = results.Int(v)
			r.last[k].Store(v)
		}
		return complete(c, op, err, PhaseRead)
	case results.FWrite, results.FCAS:
		if !known || op.Value == nil || (op.F == results.FCAS && op.Expect == nil) {
			return complete(c, op, fmt.Errorf("%w: %s of key %q without value", ErrNoRow, op.F, op.Key), PhaseWrite)
		}
		var err error
		if op.F == results.FWrite {
			err = execOne(ctx, c, ErrNoRow, fastRegisterWrite, int64(k), *op.Value)
		} else {
			err = execOne(ctx, c, ErrCASMismatch, fastRegisterCAS, int64(k), *op.Expect, *op.Value)
		}
		if err == nil {
			r.last[k].Store(*op.Value)
		}
		return complete(c, op, err, PhaseWrite)
	}
	return complete(c, op, fmt.Errorf("%w: register has no function %q", ErrNoRow, op.F), PhaseWrite)
}

// execOne runs one write statement and returns none if it affected no row.
func execOne(ctx context.Context, c *Conn, none error, st *fastStmt, args ...int64) error {
	res, err := c.execStmt(ctx, st, args...)
	if err != nil {
		return err
	}
	if res.rows == 0 {
		return none
	}
	return nil
}

// readOne reads key k's value; a key without a row is pgx.ErrNoRows.
func readOne(ctx context.Context, c *Conn, k int) (int64, error) {
	res, err := c.execStmt(ctx, fastRegisterRead, int64(k))
	if err == nil && !res.hasVal {
		err = pgx.ErrNoRows
	}
	return res.val, err
}

func (r *register) Final(ctx context.Context, c *Conn) ([]results.Op, error) {
	rows, err := c.pg.Query(ctx, registerFinalSQL)
	if err != nil {
		return nil, fmt.Errorf("register final: %w", err)
	}
	vals := make(map[int]int64, len(r.keys))
	for rows.Next() {
		var k int
		var v int64
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("register final: %w", err)
		}
		vals[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("register final: %w", err)
	}
	var out []results.Op
	for i, k := range r.keys {
		if v, ok := vals[i]; ok {
			out = append(out, finalOp(results.WorkloadRegister, results.Op{Key: k, Value: results.Int(v)}))
		}
	}
	return out, nil
}

// finalOp fills in what every final read shares.
func finalOp(workload string, op results.Op) results.Op {
	op.Process, op.Type, op.F, op.Workload = results.HarnessProcess, results.OK, results.FFinal, workload
	return op
}

// PgbenchWriteScript returns a pgbench script (for pgbench -f, best with
// -M prepared) that runs the register's write statement exactly as Do
// does (RegisterWriteSQL), on a random key of keys with a random value, so that pgbench's TPS
// and the workload's writes per second compare like for like.
func PgbenchWriteScript(keys int) string {
	if keys < 1 {
		keys = 10
	}
	return fmt.Sprintf("\\set k random(0, %d)\n\\set v random(1, 1000000000)\n"+
		"UPDATE sc_register SET val = :v WHERE id = :k;\n", keys-1)
}
