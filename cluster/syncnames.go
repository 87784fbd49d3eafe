package cluster

import (
	"errors"
	"fmt"

	"github.com/strongcheck/strongcheck/cluster/syncnames"
	"github.com/strongcheck/strongcheck/results"
)

// ParseSyncNames parses synchronous_standby_names (syncnames.Parse); its
// error wraps ErrSpec, for the user's input.
func ParseSyncNames(s string) (syncnames.Names, error) {
	n, err := syncnames.Parse(s)
	if errors.Is(err, syncnames.ErrSyntax) {
		return n, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return n, err
}

// SyncFor keeps the shape of the original synchronous_standby_names over a
// new set of standbys (SyncNames.Over); an original that does not parse is
// treated as FIRST 1.
func SyncFor(original string, standbys []string) string {
	s, err := syncnames.Parse(original)
	if err != nil {
		s = syncnames.Names{Method: syncnames.First, Num: 1, Names: []string{"*"}}
	}
	return s.Over(standbys).String()
}

// syncSatisfied reports whether pg_stat_replication rs shows the standbys
// the way s wants them once everything streams: every eligible standby
// counted (sync or quorum) or waiting its turn (potential), and at least
// Num of them counted.
func syncSatisfied(rs []results.ReplicationState, s syncnames.Names, standbys []string) bool {
	if s.Async() {
		return true
	}
	counted := 0
	for _, want := range s.EligibleAmong(standbys) {
		for _, r := range rs {
			if r.Name != want {
				continue
			}
			switch {
			case r.CommitsWait():
				counted++
			case r.SyncState == "potential":
			default:
				return false
			}
		}
	}
	return counted >= min(s.Num, len(s.EligibleAmong(standbys)))
}
