package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/results"
)

// Workload is one of register, set, bank and append: a generator (Next) and a
// client (Do) over tables of its own (prefixed "sc_<name>"). Next and Do
// are safe for concurrent use by many workers, each with its own rng and
// Conn.
type Workload interface {
	// Name is the workload's name, as in the history's "workload" field.
	Name() string
	// Setup creates the workload's tables (idempotent: they are dropped
	// and created again) and their initial state, in one transaction, on
	// the primary c is connected to, and returns the operations to record
	// before the run: bank returns an F "init" op (process harness, type
	// ok, Values = balances); register and set return none (every register
	// starts at 0, the set empty). c must be allowed to create tables
	// (the superuser); Options.Grantee names the role the clients use.
	// It runs with the cluster's synchronous_commit, i.e. it waits for the
	// standbys like every write.
	Setup(ctx context.Context, c *Conn) ([]results.Op, error)
	// Next draws the next operation's invoke with rng: Type invoke, F,
	// Workload, and Key, Value, Expect or Transfer as F needs. Values,
	// elements and transfer ids are unique within the workload. write
	// reports whether the operation must go to the primary; a read may go
	// to any node. With a single caller, the same rng seed gives the same
	// operations.
	Next(rng *rand.Rand) (op results.Op, write bool)
	// Do performs op on c and returns its completion: op's fields with
	// Type set by Classify, the value(s) read, Error (the error's text) and
	// Warning (WARNING notices received during the operation). It never
	// sets Process, Node, Time, Index or Latency. ctx bounds the operation;
	// when it expires, c is closed.
	Do(ctx context.Context, c *Conn, op results.Op) results.Op
	// Final reads the whole state on the node c is connected to, after the
	// run settled, in one snapshot, and returns F "final" ops (type ok,
	// process harness; the caller sets Node): register one per existing
	// key in key order with Key and Value; set one with Values (sorted);
	// bank one with Values = balances by account and IDs = the ids of the
	// transfers present (sorted).
	Final(ctx context.Context, c *Conn) ([]results.Op, error)
}

// ErrUnknownWorkload is wrapped by New's error for a name Names does not
// list.
var ErrUnknownWorkload = errors.New("unknown workload")

// ErrOptions is wrapped by New's error for invalid Options.
var ErrOptions = errors.New("invalid workload options")

// Options tune the workloads; a zero field means its default.
type Options struct {
	// Keys is the number of register keys (default 10).
	Keys int
	// Accounts is the number of bank accounts (default 5, at least 2).
	Accounts int
	// InitialBalance is every bank account's starting balance (default 100).
	InitialBalance int64
	// MaxTransfer is the largest transfer amount; amounts are uniform in
	// [1, MaxTransfer] (default 5).
	MaxTransfer int64
	// ReadFraction is the share of reads among the operations, in [0, 1]
	// (0 means the workload's default: register 0.5, set 0.05, bank 0.5).
	// Use WritesOnly for no reads at all.
	ReadFraction float64
	// CASFraction is the register's share of compare-and-set operations
	// (default 0.2); the rest are writes. The default mix is thus 50 %
	// reads, 30 % writes, 20 % cas.
	CASFraction float64
	// WritesOnly makes every operation a write: register plain writes
	// (no cas: the throughput benchmark's single statement), set adds,
	// bank transfers.
	WritesOnly bool
	// Grantee, when set, is the role the clients connect as: Setup grants
	// it what the workload needs on its tables.
	Grantee string
	// List-append (append.go): Isolation is the transactions' level,
	// read-committed, repeatable-read or serializable (default
	// serializable; see StandbyIsolation for read-only transactions on a
	// hot standby); MaxTxnLen bounds the micro-operations per transaction
	// (default 4, at most 10); MaxWritesPerKey is the appends after which a
	// key retires (default 32). Keys is the keys in use at a time and
	// ReadFraction the share of read-only transactions (default 0.5).
	Isolation       results.Isolation
	MaxTxnLen       int
	MaxWritesPerKey int
	// ReadAllKeys makes every read-only list-append transaction read every
	// key in use, in ascending order, instead of one to MaxTxnLen random
	// keys: two such readers on two nodes compare every pair of commits,
	// which finds a long fork (G-nonadjacent) many times more often.
	ReadAllKeys bool
}

// Defaults of Options that the command line shows.
const (
	DefaultKeys      = 10
	DefaultIsolation = Serializable
)

func (o Options) withDefaults(readDefault float64) (Options, error) {
	if o.Keys == 0 {
		o.Keys = DefaultKeys
	}
	if o.Accounts == 0 {
		o.Accounts = 5
	}
	if o.InitialBalance == 0 {
		o.InitialBalance = 100
	}
	if o.MaxTransfer == 0 {
		o.MaxTransfer = 5
	}
	if o.ReadFraction == 0 {
		o.ReadFraction = readDefault
	}
	if o.CASFraction == 0 {
		o.CASFraction = 0.2
	}
	if o.WritesOnly {
		o.ReadFraction, o.CASFraction = 0, 0
	}
	if o.Isolation == "" {
		o.Isolation = DefaultIsolation
	}
	if o.MaxTxnLen == 0 {
		o.MaxTxnLen = 4
	}
	if o.MaxWritesPerKey == 0 {
		o.MaxWritesPerKey = 32
	}
	switch {
	case o.Keys < 1:
		return o, fmt.Errorf("%w: keys %d < 1", ErrOptions, o.Keys)
	case o.Accounts < 2:
		return o, fmt.Errorf("%w: accounts %d < 2", ErrOptions, o.Accounts)
	case o.InitialBalance < 0:
		return o, fmt.Errorf("%w: initial balance %d < 0", ErrOptions, o.InitialBalance)
	case o.MaxTransfer < 1:
		return o, fmt.Errorf("%w: max transfer %d < 1", ErrOptions, o.MaxTransfer)
	case !slices.Contains(results.IsolationLevels(), o.Isolation):
		return o, fmt.Errorf("%w: isolation %q (want %s)", ErrOptions, o.Isolation, strings.Join(results.IsolationNames(), ", "))
	case o.MaxTxnLen < 1 || o.MaxTxnLen > 10:
		return o, fmt.Errorf("%w: transaction length %d: want 1 to 10", ErrOptions, o.MaxTxnLen)
	case o.MaxWritesPerKey < 1:
		return o, fmt.Errorf("%w: writes per key %d < 1", ErrOptions, o.MaxWritesPerKey)
	case o.ReadFraction < 0 || o.CASFraction < 0 || o.ReadFraction+o.CASFraction > 1:
		return o, fmt.Errorf("%w: read fraction %g and cas fraction %g must be >= 0 and sum to at most 1",
			ErrOptions, o.ReadFraction, o.CASFraction)
	}
	return o, nil
}

// Names lists the workloads New knows, sorted.
func Names() []string {
	return []string{results.WorkloadAppend, results.WorkloadBank, results.WorkloadRegister, results.WorkloadSet}
}

// New returns the workload called name with opts. Each call returns a fresh
// workload with its own counters: use one per run.
func New(name string, opts Options) (Workload, error) {
	var def float64
	switch name {
	case results.WorkloadRegister, results.WorkloadBank, results.WorkloadAppend:
		def = 0.5
	case results.WorkloadSet:
		def = 0.05
	default:
		return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknownWorkload, name, Names())
	}
	o, err := opts.withDefaults(def)
	if err != nil {
		return nil, fmt.Errorf("workload %s: %w", name, err)
	}
	switch name {
	case results.WorkloadRegister:
		return newRegister(o), nil
	case results.WorkloadSet:
		return newSet(o), nil
	case results.WorkloadAppend:
		return newListAppend(o), nil
	}
	return newBank(o), nil
}

// complete turns the invoke op into its completion for err in phase.
func complete(c *Conn, op results.Op, err error, phase Phase) results.Op {
	if err != nil && c.closedAtStart {
		err = fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	op.Type = Classify(err, phase)
	if err != nil {
		op.Error = err.Error()
	}
	op.Warning = c.Warning()
	return op
}

// grant returns the GRANT statement for tables, or "" without a grantee.
func grant(grantee string, tables ...string) string {
	if grantee == "" {
		return ""
	}
	return fmt.Sprintf("GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO %s",
		strings.Join(tables, ", "), pgx.Identifier{grantee}.Sanitize())
}

// setupTx runs stmts (without parameters) in one transaction on c.
func setupTx(ctx context.Context, c *Conn, stmts ...string) error {
	tx, err := c.pg.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	for _, s := range stmts {
		if s == "" {
			continue
		}
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("%q: %w", s, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
