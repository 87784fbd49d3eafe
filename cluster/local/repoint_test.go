package local

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
)

// A standby pointed at the node about to be promoted, on a view of its
// WAL that was already stale (WAL in flight when the primary died reached
// it after it was asked, as lag-then-kill's congested queue delivers it),
// holds WAL the new primary never had and cannot follow its timeline:
// Repoint must see that and rewind it, not count it a follower. Seen in
// `--nemesis all`, seed 64, before the fix: n3 looped on "new timeline 3
// forked off current database system timeline 2 before current recovery
// point" for the rest of the run.
func TestIntegrationRepointForkedFollower(t *testing.T) {
	c := upCluster(t, cluster.Spec{})
	ctx := context.Background()
	require.NoError(t, cluster.Exec(ctx, c, "n1", "CREATE TABLE t (v text)", "GRANT ALL ON t TO "+UserName))
	stale := cluster.NodeStates(ctx, c) // what the failover would have seen
	require.NoError(t, c.Partition(ctx, cluster.Grudge{"n1": {"n2"}}))
	conn := connect(t, c, "n1")
	_, err := conn.Exec(ctx, "SET synchronous_commit = local")
	require.NoError(t, err)
	for range 20 {
		_, err := conn.Exec(ctx, "INSERT INTO t SELECT repeat('x', 1000) FROM generate_series(1, 50)")
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		s, err := cluster.QueryState(ctx, c.ConnString("n3", true))
		n2, _ := cluster.ParseLSN(stale[1].ReceiveLSN)
		n3, _ := cluster.ParseLSN(s.ReceiveLSN)
		return err == nil && n3 > n2+512<<10
	}, 10*time.Second, 20*time.Millisecond, "n3 received WAL n2 did not")
	// n1-n2 stays cut: what n1's dead walsender still had in its socket
	// would otherwise reach n2 after a heal.
	require.NoError(t, c.Kill(ctx, "n1"))
	s2, err := cluster.QueryState(ctx, c.ConnString("n2", true))
	require.NoError(t, err)

	// The stale decision: n3 pointed at n2 before n2's promotion.
	require.NoError(t, c.Follow(ctx, "n3", "n2"))
	require.NoError(t, cluster.PromoteNode(ctx, c, "n2"))
	require.NoError(t, cluster.SetSyncStandbys(ctx, c, "n2", "ANY 1 (n3)"))
	followers, rewound, err := cluster.Repoint(ctx, c, "n1", "n2", s2.ReceiveLSN, []string{"n3"})
	require.NoError(t, err)
	assert.Equal(t, []string{"n3"}, followers)
	assert.Equal(t, []string{"n3"}, rewound, "n3 held WAL beyond n2's switch point: rewound")
	require.Eventually(t, func() bool { return cluster.Follows(ctx, c, "n2", "n3") }, 20*time.Second, 50*time.Millisecond,
		"n3 streams from n2 on its timeline")
	require.NoError(t, c.Heal(ctx))
}
