package cluster

import "time"

// SQLObserved is implemented by backends that see neither a node's
// processes nor the network between nodes (a cluster strongcheck did not
// build, reached only by connection strings). The nemesis then verifies
// each fault from outside, through SQL: a killed or stopped node stops
// answering, a paused one lets connection attempts time out, a cut-off
// standby receives none of the WAL the primary writes after the cut, a
// healed one receives it again, a started one answers.
type SQLObserved interface {
	// ApplicationName is the name node streams under in the primary's
	// pg_stat_replication.
	ApplicationName(node string) string
	// ObserveWithin bounds the wait for a fault to show through SQL.
	ObserveWithin() time.Duration
}

// Discovered is implemented by backends attached to a cluster they did
// not build: what they found before the run, for test.json and the
// history.
type Discovered interface {
	// Discovery returns the settings as the primary runs them (they
	// replace the spec's in test.json) and the topology in one line.
	Discovery() (settings Settings, topology string)
}
