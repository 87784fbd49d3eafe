package workload

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/strongcheck/strongcheck/results"
)

// Phase says where in an operation an error arose; Classify needs it
// because the same error means "certainly not" in one place and "maybe" in
// another.
type Phase int

const (
	// PhaseRead: a read-only operation. Reads never change state, so any
	// error is fail.
	PhaseRead Phase = iota
	// PhaseWrite: a single autocommit statement that writes. Its commit is
	// part of the statement, so only errors that prove the statement was
	// never run or was rolled back are fail; the rest (timeouts, lost
	// connections, shutdowns, unknown errors) are info.
	PhaseWrite
	// PhaseTx: BEGIN or a statement inside an explicit transaction before
	// COMMIT was sent. The server rolls back a transaction whose COMMIT it
	// never received (error, cancel, or lost connection alike), so any
	// error is fail.
	PhaseTx
	// PhaseCommit: the COMMIT of an explicit transaction. Only an error
	// raised before COMMIT was sent, the server answering ROLLBACK, or an
	// ERROR of the pre-commit checks (refusedCommit) is fail; anything else
	// is info.
	PhaseCommit
)

func (p Phase) String() string {
	switch p {
	case PhaseRead:
		return "read"
	case PhaseWrite:
		return "write"
	case PhaseTx:
		return "tx"
	case PhaseCommit:
		return "commit"
	}
	return "phase(?)"
}

// Errors the clients return for outcomes that are not driver errors; each
// means the write certainly did not take effect.
var (
	// ErrCASMismatch: a compare-and-set matched no row (the value was not
	// the expected one).
	ErrCASMismatch = errors.New("cas: no row with the expected value")
	// ErrNoRow: a write found no row to change (the key does not exist).
	ErrNoRow = errors.New("no such row")
	// ErrInsufficientFunds: a transfer would have made a balance negative;
	// the transaction was rolled back.
	ErrInsufficientFunds = errors.New("transfer: insufficient funds, rolled back")
	// ErrNotSent: the connection was closed before the operation began, so
	// nothing of it reached the server (Do wraps the driver's error in it;
	// pgx's own "conn closed" cannot tell this from a connection lost after
	// sending).
	ErrNotSent = errors.New("connection closed before the operation: not sent")
)

// Classify is the one place that turns an operation's error into the
// history's completion type: OK for nil; Fail only where the operation
// certainly did not happen; Info wherever it may have. See Phase for the
// rules per phase. Errors certain in every phase: an error before the
// request was sent (pgconn.SafeToRetry, including a context that was done
// before the query was sent, but not pgx's "conn closed", which it also
// reports after sending), the sentinel errors
// of this package, an error while preparing a statement, and COMMIT
// answered with ROLLBACK. For PhaseWrite also a server ERROR whose SQLSTATE
// proves the statement's transaction was rolled back (see definiteState).
func Classify(err error, phase Phase) results.Type {
	if err == nil {
		return results.OK
	}
	switch phase {
	case PhaseRead, PhaseTx:
		return results.Fail
	}
	if definite(err) {
		return results.Fail
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && severity(pe) == "ERROR" {
		if phase == PhaseWrite && definiteState(pe.Code) || phase == PhaseCommit && refusedCommit(pe.Code) {
			return results.Fail
		}
	}
	return results.Info
}

// refusedCommit reports SQLSTATEs which, as an ERROR in answer to COMMIT,
// prove the transaction was rolled back: they come from the checks
// PostgreSQL runs before it writes the commit record (serializable
// conflicts, deferred constraints), and an error after that record would
// be a PANIC. 40003 (statement completion unknown) is deliberately absent.
func refusedCommit(code string) bool {
	switch code {
	case "40001", // serialization_failure (SSI's pre-commit check)
		"40P01", // deadlock_detected
		"40002": // transaction_integrity_constraint_violation
		return true
	}
	return strings.HasPrefix(code, "23") // a deferred constraint
}

// definite reports errors that prove no request reached the server, or
// that the server refused or rolled back the operation, in any phase.
func definite(err error) bool {
	// pgx (5.12) also reports a connection lost while it waited for a
	// result as "conn closed", a lock error it calls safe to retry: the
	// request may have reached the server (a COMMIT waiting for the
	// standbys when the primary is killed, TestIntegrationKillDuringCommit),
	// so it proves nothing.
	if pgconn.SafeToRetry(err) && !errors.Is(err, pgconn.ErrConnClosed) {
		return true
	}
	if errors.Is(err, ErrNotSent) || errors.Is(err, ErrCASMismatch) || errors.Is(err, ErrNoRow) ||
		errors.Is(err, ErrInsufficientFunds) || errors.Is(err, pgx.ErrTxCommitRollback) {
		return true
	}
	var prep *pgconn.PrepareError // the statement was never executed
	return errors.As(err, &prep)
}

func severity(pe *pgconn.PgError) string {
	if pe.SeverityUnlocalized != "" {
		return pe.SeverityUnlocalized
	}
	return pe.Severity
}

// definiteState reports SQLSTATEs which, as an ERROR of an autocommit
// statement, prove the statement's transaction was rolled back: the server
// cannot raise an ERROR once the commit record is written (that would be a
// PANIC), and these codes arise while the statement runs. Cancellations
// (57014) and shutdowns (57P01..) are deliberately absent: a timeout is
// always info for a write, as is anything not listed.
func definiteState(code string) bool {
	switch code {
	case "25006", // read_only_sql_transaction: a standby refused the write
		"25P02", // in_failed_sql_transaction
		"40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"0A000", // feature_not_supported
		"3D000", // invalid_catalog_name
		"3F000": // invalid_schema_name
		return true
	}
	switch {
	case strings.HasPrefix(code, "22"), // data exception
		strings.HasPrefix(code, "23"), // integrity constraint violation (23505 unique)
		strings.HasPrefix(code, "42"): // syntax error or access rule violation
		return true
	}
	return false
}
