package harness

import (
	"slices"

	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// isolation is the list-append workload's effective isolation level, ""
// when the run has no list-append workload.
func (t *Test) isolation() results.Isolation {
	if !slices.Contains(t.Workloads, results.WorkloadAppend) {
		return ""
	}
	if t.Options.Isolation == "" {
		return workload.DefaultIsolation
	}
	return t.Options.Isolation
}

// isolationInfo is what test.json records about the transactions'
// isolation: the level (a field of its own), and in info.Extra the level
// read-only transactions fall back to on a hot standby (PostgreSQL refuses
// serializable there) and whether read-only transactions read every key.
func (t *Test) isolationInfo(info *results.TestInfo) {
	level := t.isolation()
	if level == "" {
		return
	}
	info.Isolation = level
	sb := string(workload.StandbyIsolation(level))
	if sb != string(level) {
		sb += " (read-only transactions on a hot standby, which refuses " + string(level) + ")"
	}
	extra := info.Extra
	extra["standby_isolation"] = sb
	if t.Options.ReadAllKeys {
		extra["read_all_keys"] = "true"
	}
}
