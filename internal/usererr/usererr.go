// Package usererr marks the errors a user causes with what they type
// (flags, arguments, a cluster specification, faults, a history file or
// folder), wherever in the code they are found. The command layer maps
// every error that Is finds to its bad-arguments exit code; a library only
// marks.
//
//	if n < 1 {
//		return usererr.New("--runs %d: must be at least 1", n)
//	}
package usererr

import (
	"errors"
	"fmt"
)

// Error is an error the user can fix. Its text is Err's, unchanged.
type Error struct {
	Err error
}

func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the error it marks.
func (e *Error) Unwrap() error { return e.Err }

// New formats an error (with %w as fmt.Errorf does) and marks it as the
// user's.
func New(format string, args ...any) error {
	return &Error{fmt.Errorf(format, args...)}
}

// Wrap marks err as the user's; nil stays nil.
func Wrap(err error) error {
	if err == nil {
		return nil
	}
	return &Error{err}
}

// Is reports whether the user caused err: whether an Error is anywhere in
// its chain, even under an error that is not theirs (a backend refusing an
// argument once the run started).
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// Sentinel returns a sentinel error (compared with errors.Is) that is also
// the user's: every error wrapping it is one Is finds.
func Sentinel(text string) error {
	return &Error{errors.New(text)}
}
