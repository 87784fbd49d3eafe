package nemesis

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// stall-commit on a real cluster: with nothing committing it finds no
// commit to stall and says so (the window still closes); with writers, a
// standby shows a commit the primary hides while the stall holds, the
// primary shows it once the backends continue, and nothing stays stopped.
// A backend that cannot stop single processes has the step skipped.
func TestIntegrationStallCommit(t *testing.T) {
	c := upLocal(t)
	ctx := context.Background()
	n, rec := newTestNemesis(c, Policy{Mode: FailoverAuto})
	step := Step{Fault: Fault{Kind: StallCommit}, Hold: 2 * time.Second}

	short := step
	short.Hold = 200 * time.Millisecond
	require.NoError(t, n.strike(ctx, short))
	op := rec.completion(StallCommit, results.PhaseStart)
	require.NotNil(t, op)
	assert.Equal(t, results.Info, op.Type)
	assert.Contains(t, op.Error, "no commit waited")
	require.NotNil(t, rec.completion("continue", results.PhaseStop), "the window closes")
	r := checker.CheckHistory(ctx, &results.History{Ops: rec.ops}, checker.Options{})
	assert.Equal(t, checker.Unknown, r.Find(checker.NameFaults).Verdict)
	for _, s := range []string{"n2", "n3"} {
		assert.Equal(t, cluster.Unknown, c.Status(s), "%s resumed", s)
	}

	require.NoError(t, cluster.Exec(ctx, c, "n1", "CREATE TABLE stalled (v bigint)"))
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			conn, err := pgx.Connect(wctx, c.ConnString("n1", true))
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			for i := int64(w) << 32; wctx.Err() == nil; i++ {
				if _, err := conn.Exec(wctx, "INSERT INTO stalled VALUES ($1)", i); err != nil {
					return
				}
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	rec2 := &memRecorder{start: time.Now()}
	n.rec = rec2
	struck := make(chan error, 1)
	go func() { struck <- n.strike(ctx, step) }()
	require.Eventually(t, func() bool { return rec2.completion(StallCommit, results.PhaseStart) != nil }, 20*time.Second, 10*time.Millisecond)
	op = rec2.completion(StallCommit, results.PhaseStart)
	require.Equal(t, results.OK, op.Type, op.Error)
	assert.Contains(t, op.Fault.Verified, "stopped inside their commit's wait")
	onStandby := values(t, c, "n2")
	onPrimary := values(t, c, "n1")
	hidden := missing(onStandby, onPrimary)
	assert.NotEmpty(t, hidden, "during the stall n2 shows commits n1 does not")
	require.NoError(t, <-struck)
	cont := rec2.completion("continue", results.PhaseStop)
	require.NotNil(t, cont)
	assert.Equal(t, results.OK, cont.Type, cont.Error)
	assert.Empty(t, missing(hidden, values(t, c, "n1")), "once continued, n1 shows them")
	ps, err := c.Processes(ctx, "n1")
	require.NoError(t, err)
	assert.Zero(t, ps.Stopped, "nothing left stopped")
	r = checker.CheckHistory(ctx, &results.History{Ops: rec2.ops}, checker.Options{})
	assert.Equal(t, checker.Valid, r.Find(checker.NameFaults).Verdict, r.Find(checker.NameFaults).Summary)

	rec3 := &memRecorder{start: time.Now()}
	n3 := New(struct{ cluster.Cluster }{c}, n.cfg, rec3, &fixedTopo{p: "n1"})
	require.NoError(t, n3.strike(ctx, short))
	op = rec3.completion(StallCommit, results.PhaseInfo)
	require.NotNil(t, op, "the skip is in the history")
	assert.Contains(t, op.Error, "cannot stop single server processes")
}

// values returns the values of table stalled that node shows.
func values(t *testing.T, c cluster.Cluster, node string) []int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString(node, true))
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var vs []int64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT coalesce(array_agg(v), '{}') FROM stalled").Scan(&vs))
	out := make([]int, len(vs))
	for i, v := range vs {
		out[i] = int(v)
	}
	slices.Sort(out)
	return out
}

// missing returns the elements of a not in b.
func missing(a, b []int) []int {
	in := map[int]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []int
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	return out
}
