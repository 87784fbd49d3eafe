package cluster

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster/syncnames"
	"github.com/strongcheck/strongcheck/results"
)

func sb(node, recv, replay string, tl int) results.NodeState {
	return results.NodeState{Node: node, Role: string(Standby), ReceiveLSN: recv, ReplayLSN: replay, Timeline: tl}
}

// SafeCandidate promotes only a standby the sync list guarantees to hold
// every acknowledged commit, and says why when none can be known.
func TestSafeCandidate(t *testing.T) {
	down := results.NodeState{Node: "n3", Role: string(Down)}
	for _, tc := range []struct {
		name, sync string
		states     []results.NodeState
		want       string // "" means ErrNoSafeStandby
	}{
		{"ANY 2, both answer: the most advanced", "ANY 2 (n2, n3)", []results.NodeState{sb("n2", "0/100", "0/90", 1), sb("n3", "0/200", "0/150", 1)}, "n3"},
		{"ANY 2, one answers: it has every commit", "ANY 2 (n2, n3)", []results.NodeState{sb("n2", "0/100", "0/90", 1), down}, "n2"},
		{"ANY 1, one answers: the other may hold more", "ANY 1 (n2, n3)", []results.NodeState{sb("n2", "0/100", "0/90", 1), down}, ""},
		{"ANY 1, both answer", "ANY 1 (n2, n3)", []results.NodeState{sb("n2", "0/300", "0/90", 1), sb("n3", "0/200", "0/200", 1)}, "n2"},
		{"FIRST 1, the priority standby is down", "FIRST 1 (n2, n3)", []results.NodeState{sb("n3", "0/100", "0/100", 1), {Node: "n2", Role: string(Unknown)}}, ""},
		{"plain list, both answer", "n2, n3", []results.NodeState{sb("n2", "0/100", "0/100", 1), sb("n3", "0/100", "0/90", 1)}, "n2"},
		{"*, both answer", "*", []results.NodeState{sb("n2", "0/100", "0/100", 1), sb("n3", "0/180", "0/90", 1)}, "n3"},
		{"asynchronous: none is known", "", []results.NodeState{sb("n2", "0/100", "0/100", 1), sb("n3", "0/100", "0/100", 1)}, ""},
		{"the greater of receive and replay LSN", "ANY 2 (n2, n3)", []results.NodeState{sb("n2", "", "0/300", 1), sb("n3", "0/200", "0/150", 1)}, "n2"},
		{"only the newest timeline counts", "ANY 2 (n2, n3)", []results.NodeState{sb("n2", "0/100", "0/100", 2), sb("n3", "0/900", "0/900", 1)}, "n2"},
		{"a standby outside the list does not count", "FIRST 1 (n2)", []results.NodeState{sb("n3", "0/900", "0/900", 1), {Node: "n2", Role: string(Down)}}, ""},
	} {
		s, err := syncnames.Parse(tc.sync)
		require.NoError(t, err)
		best, reason, err := SafeCandidate(s, "on", []string{"n2", "n3"}, tc.states)
		if tc.want == "" {
			assert.True(t, errors.Is(err, ErrNoSafeStandby), "%s: %v (chose %q)", tc.name, err, best)
			continue
		}
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.want, best, tc.name)
		assert.Contains(t, reason, tc.want, tc.name)
	}
}

func TestSafeCandidateLocalCommit(t *testing.T) {
	s, _ := syncnames.Parse("ANY 2 (n2, n3)")
	for _, sc := range []string{"local", "off", "'local'"} {
		_, _, err := SafeCandidate(s, sc, []string{"n2", "n3"}, []results.NodeState{sb("n2", "0/1", "0/1", 1), sb("n3", "0/1", "0/1", 1)})
		assert.ErrorIs(t, err, ErrNoSafeStandby, sc)
	}
	for _, sc := range []string{"on", "remote_write", "remote_apply", ""} {
		_, _, err := SafeCandidate(s, sc, []string{"n2", "n3"}, []results.NodeState{sb("n2", "0/1", "0/1", 1), sb("n3", "0/1", "0/1", 1)})
		assert.NoError(t, err, sc)
	}
}

func TestParseSyncNamesIsTheUsersError(t *testing.T) {
	_, err := ParseSyncNames("ANY (n2)")
	assert.ErrorIs(t, err, ErrSpec)
	assert.ErrorIs(t, err, syncnames.ErrSyntax)
	assert.Equal(t, "ANY 1 (n3)", SyncFor("ANY 2 (n2, n3)", []string{"n3"}), "capped at the standbys left")
	assert.Equal(t, "ANY 2 (n1, n3)", SyncFor("ANY 2 (n2, n3)", []string{"n1", "n3"}), "ANY: the standbys in node order")
	assert.Equal(t, "FIRST 1 (n3, n1)", SyncFor("FIRST 1 (n3, n2)", []string{"n1", "n3"}), "FIRST: priority kept, the new one last")
}
