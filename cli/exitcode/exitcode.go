// Package exitcode holds strongcheck's exit codes, as DESIGN.md fixes
// them, and the one mapping from a verdict to its code. It belongs to the
// command layer; it is a package of its own so that the report, which
// states the code a run exits with, can say it without importing cli.
package exitcode

import "github.com/strongcheck/strongcheck/checker"

// The exit codes.
const (
	Valid   = 0
	Invalid = 1
	Unknown = 2
	// Usage is for bad arguments: an error the user caused (usererr).
	Usage = 254
	// Harness is for a harness or infrastructure error.
	Harness = 255
)

// Of maps a verdict to its exit code; anything but valid or invalid is
// unknown, never a pass.
func Of(v checker.Verdict) int {
	switch v {
	case checker.Valid:
		return Valid
	case checker.Invalid:
		return Invalid
	}
	return Unknown
}
