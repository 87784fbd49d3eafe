package harness

import (
	"slices"

	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// isolation is the list-append workload's effective isolation level, ""
// when the run has no list-append workload.
func (t *Test) isolation() string {
	if !slices.Contains(t.Workloads, results.WorkloadAppend) {
		return ""
	}
	if t.Options.Isolation == "" {
		return workload.Serializable
	}
	return t.Options.Isolation
}

// isolationInfo is what test.json records about the transactions'
// isolation: the level, the level read-only transactions fall back to on a
// hot standby (PostgreSQL refuses serializable there), and whether
// read-only transactions read every key.
func (t *Test) isolationInfo(extra map[string]string) {
	level := t.isolation()
	if level == "" {
		return
	}
	extra["isolation"] = level
	sb := workload.StandbyIsolation(level)
	if sb != level {
		sb += " (read-only transactions on a hot standby, which refuses " + level + ")"
	}
	extra["standby_isolation"] = sb
	if t.Options.ReadAllKeys {
		extra["read_all_keys"] = "true"
	}
}
