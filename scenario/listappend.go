package scenario

import (
	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/checker/elle"
)

// The list-append scenarios (issue 15): transactions across nodes, judged
// with Elle's method by the list-append check.
var listAppendScenarios = []Scenario{
	{
		Name: "long-fork-across-nodes",
		Shows: "at repeatable read (snapshot isolation) a reader on the primary and one on a standby can see two independent commits in opposite orders (long fork): " +
			"a standby makes commits visible in WAL order, the primary as each backend returns from its synchronous-replication wait",
		// Twenty clients: a long fork needs two commits released from the
		// synchronous-replication wait together; with ten, one 20 s run in
		// six found none.
		Args: args("--workload", "append", "--isolation", "repeatable-read", "--read-from", "any", "--nemesis", "none",
			"--concurrency", "20", "--keys", "6"),
		Expect:  checker.Invalid,
		Anomaly: "G-nonadjacent (long fork): rules out snapshot isolation",
		Found:   rulesOutBy("snapshot-isolation", elle.GNonadjacent, elle.GSingle),
	},
	{
		Name: "serializable-standby-reads",
		Shows: "serializable transactions on the primary with read-only transactions on the standbys (repeatable read: a hot standby refuses serializable) " +
			"are not serializable: a standby shows commits in commit order, which need not be the serial order",
		Args:    args("--workload", "append", "--isolation", "serializable", "--read-from", "standbys", "--nemesis", "none"),
		Expect:  checker.Invalid,
		Anomaly: "a dependency cycle (G2-item, G-single, G-nonadjacent): rules out serializable",
		Found:   rulesOutBy("serializable", elle.G2Item, elle.GSingle, elle.GNonadjacent),
	},
	{
		// Not through failovers: after a kill of the primary, 2 of 6 runs
		// of 15-20 s showed a G2-item among serializable transactions on
		// the promoted standby (issue 15's report), never without one.
		Name:    "serializable-primary",
		Shows:   "serializable transactions on the primary alone stay serializable (strict serializable) while standbys are cut off: their commits wait, none is lost",
		Args:    args("--workload", "append", "--isolation", "serializable", "--read-from", "primary", "--nemesis", "partition:standby"),
		Expect:  checker.Valid,
		Anomaly: "none (list-append valid for serializable)",
		Found: func(r *checker.Result) bool {
			c := check(r, checker.NameListAppend)
			return r.Verdict == checker.Valid && c != nil && c.ListAppend != nil && c.ListAppend.OK > 0
		},
	},
}

// rulesOutBy is a Found that wants the list-append check invalid and model
// ruled out by at least one of kinds.
func rulesOutBy(model string, kinds ...elle.Kind) func(*checker.Result) bool {
	return func(r *checker.Result) bool {
		c := check(r, checker.NameListAppend)
		if c == nil || c.Verdict != checker.Invalid || c.ListAppend == nil {
			return false
		}
		for _, ro := range c.ListAppend.RulesOut {
			if ro.Model != model {
				continue
			}
			for _, kc := range ro.By {
				for _, k := range kinds {
					if kc.Kind == k {
						return true
					}
				}
			}
		}
		return false
	}
}

// listAppendFirstNS is the earliest invoke among the list-append check's
// evidence (-1 when none).
func listAppendFirstNS(c *checker.Check) int64 {
	first := int64(-1)
	if c.ListAppend == nil {
		return first
	}
	for _, a := range c.ListAppend.Anomalies {
		for _, cs := range a.Cases {
			for _, t := range cs.Txns {
				if first < 0 || t.InvokeNS < first {
					first = t.InvokeNS
				}
			}
		}
	}
	return first
}
