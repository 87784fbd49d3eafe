package report

import (
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
