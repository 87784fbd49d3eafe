package report

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/strongcheck/strongcheck/results"
)

// The isolation level, a field of its own in test.json, is listed with
// the run's other settings, where it stood when it travelled in Extra.
func TestExtraKVListsTheIsolationLevel(t *testing.T) {
	info := &results.TestInfo{Isolation: results.Serializable, Extra: map[string]string{"rate": "0", "standby_isolation": "repeatable-read"}}
	assert.Equal(t, []kv{{"isolation", "serializable"}, {"rate", "0"}, {"standby_isolation", "repeatable-read"}}, extraKV(info))
	assert.Equal(t, "0", info.Extra["rate"])
	_, added := info.Extra["isolation"]
	assert.False(t, added, "the run's own map is left alone")
	assert.Equal(t, []kv{{"isolation", "read-committed"}}, extraKV(&results.TestInfo{Isolation: results.ReadCommitted}))
	assert.Empty(t, extraKV(&results.TestInfo{}))
}

// A run that went past its time limit to finish its planned faults says
// so, beside the allowance, in the report and in summary.md.
func TestRunPastItsTimeLimitIsShown(t *testing.T) {
	info := &results.TestInfo{TimeLimitNS: 30e9, OverrunNS: 60e9, ExtendedNS: 4.8e9}
	assert.Equal(t, []kv{
		{"overrun", "1m0s allowed past the time limit for the planned faults"},
		{"ran past its time limit", "4.80 s, to finish the faults planned inside it"},
	}, extraKV(info))
	assert.Contains(t, summaryFacts(&Input{Info: info}), "4.80 s past it to finish the planned faults")
	assert.NotContains(t, strings.Join(summaryFacts(&Input{Info: &results.TestInfo{TimeLimitNS: 30e9}}), " "), "past it")
}
