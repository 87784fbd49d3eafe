package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/strongcheck/strongcheck/results"
)

// notSent is an error that pgconn.SafeToRetry recognises, like pgx's own
// errors for a request that was never sent (closed connection, context done
// before the query).
type notSent struct{}

func (notSent) Error() string     { return "not sent" }
func (notSent) SafeToRetry() bool { return true }

// closedAfterSend is what pgx returns when the connection dies while it
// waits for a result: a lock error, safe to retry by its own account,
// wrapping pgconn.ErrConnClosed.
type closedAfterSend struct{}

func (closedAfterSend) Error() string     { return "conn closed" }
func (closedAfterSend) SafeToRetry() bool { return true }
func (closedAfterSend) Unwrap() error     { return pgconn.ErrConnClosed }

func pgErr(severity, code string) error {
	return &pgconn.PgError{Severity: severity, SeverityUnlocalized: severity, Code: code, Message: "m"}
}

func TestClassify(t *testing.T) {
	const (
		ok   = results.OK
		fail = results.Fail
		info = results.Info
	)
	timeout := fmt.Errorf("timeout: %w", context.DeadlineExceeded)
	lost := &net.OpError{Op: "read", Net: "tcp", Err: io.ErrUnexpectedEOF}
	// want per phase: read, write, tx, commit
	tests := []struct {
		name string
		err  error
		want [4]results.Type
	}{
		{"success", nil, [4]results.Type{ok, ok, ok, ok}},
		{"not sent (SafeToRetry)", notSent{}, [4]results.Type{fail, fail, fail, fail}},
		{"not sent, wrapped", fmt.Errorf("x: %w", notSent{}), [4]results.Type{fail, fail, fail, fail}},
		{"conn closed, maybe after sending", closedAfterSend{}, [4]results.Type{fail, info, fail, info}},
		{"conn closed before the operation", fmt.Errorf("%w: %w", ErrNotSent, closedAfterSend{}), [4]results.Type{fail, fail, fail, fail}},
		{"serialization failure", pgErr("ERROR", "40001"), [4]results.Type{fail, fail, fail, fail}},
		{"deadlock", pgErr("ERROR", "40P01"), [4]results.Type{fail, fail, fail, fail}},
		{"statement completion unknown", pgErr("ERROR", "40003"), [4]results.Type{fail, info, fail, info}},
		{"serialization failure but FATAL", pgErr("FATAL", "40001"), [4]results.Type{fail, info, fail, info}},
		{"read-only standby refuses write", pgErr("ERROR", "25006"), [4]results.Type{fail, fail, fail, info}},
		{"unique violation", pgErr("ERROR", "23505"), [4]results.Type{fail, fail, fail, fail}},
		{"check violation", pgErr("ERROR", "23514"), [4]results.Type{fail, fail, fail, fail}},
		{"undefined table", pgErr("ERROR", "42P01"), [4]results.Type{fail, fail, fail, info}},
		{"server error wrapped", fmt.Errorf("op: %w", pgErr("ERROR", "40001")), [4]results.Type{fail, fail, fail, fail}},
		{"definite code but FATAL", pgErr("FATAL", "25006"), [4]results.Type{fail, info, fail, info}},
		{"query canceled", pgErr("ERROR", "57014"), [4]results.Type{fail, info, fail, info}},
		{"admin shutdown", pgErr("FATAL", "57P01"), [4]results.Type{fail, info, fail, info}},
		{"crash shutdown", pgErr("FATAL", "57P02"), [4]results.Type{fail, info, fail, info}},
		{"internal error", pgErr("ERROR", "XX000"), [4]results.Type{fail, info, fail, info}},
		{"context deadline", timeout, [4]results.Type{fail, info, fail, info}},
		{"context canceled", context.Canceled, [4]results.Type{fail, info, fail, info}},
		{"lost connection", lost, [4]results.Type{fail, info, fail, info}},
		{"eof", io.EOF, [4]results.Type{fail, info, fail, info}},
		{"unknown error", errors.New("something"), [4]results.Type{fail, info, fail, info}},
		{"cas matched no row", fmt.Errorf("k0: %w", ErrCASMismatch), [4]results.Type{fail, fail, fail, fail}},
		{"no such row", ErrNoRow, [4]results.Type{fail, fail, fail, fail}},
		{"insufficient funds", ErrInsufficientFunds, [4]results.Type{fail, fail, fail, fail}},
		{"commit answered rollback", pgx.ErrTxCommitRollback, [4]results.Type{fail, fail, fail, fail}},
		{"prepare failed", &pgconn.PrepareError{}, [4]results.Type{fail, fail, fail, fail}},
	}
	phases := [4]Phase{PhaseRead, PhaseWrite, PhaseTx, PhaseCommit}
	for _, tc := range tests {
		for i, ph := range phases {
			t.Run(tc.name+"/"+ph.String(), func(t *testing.T) {
				assert.Equal(t, tc.want[i], Classify(tc.err, ph))
			})
		}
	}
}
