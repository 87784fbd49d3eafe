package checker

import "fmt"

// Register values that repeat (issue 15). strongcheck's register workload
// writes every value once, and the value index (register.go), the pruning
// of unobserved info writes (keyOperations), the stale-read check and the
// register part of the RPO check rely on it. Jepsen's register histories
// write small integers again and again: for them the linearizability
// check runs porcupine on every operation, without pruning, and the checks
// that need unique values say unknown instead of judging.

// valuesRepeat reports whether some value is written by two writes or cas
// (of any key), or the initial 0 is written.
func valuesRepeat(ri *regIndex) bool {
	seen := make(map[int64]struct{}, len(ri.flat)/2)
	for i := range ri.flat {
		r := &ri.flat[i]
		if r.kind == opRead || !r.hasValue {
			continue
		}
		if _, dup := seen[r.value]; dup || r.value == 0 {
			return true
		}
		seen[r.value] = struct{}{}
	}
	return false
}

// unlessRepeats runs check unless ri's values repeat; then the check named
// name is unknown, with the reason.
func unlessRepeats(ri *regIndex, name string, check func() Check) Check {
	if ri == nil || !ri.repeats {
		return check()
	}
	err := "register values repeat (several writes of one value, as in Jepsen's histories): this check needs unique values, so it did not judge; the linearizability check ran porcupine on every operation"
	return Check{Name: name, Verdict: Unknown, Error: err, Summary: fmt.Sprintf("unknown: %s", err)}
}
