package nemesis

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/results"
)

var nodes = []string{"n1", "n2", "n3"}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", nil, ""},
		{"none", nil, ""},
		{"kill-primary,partition", []string{"kill-primary", "partition"}, ""},
		{"partition:standby, pause:n2", []string{"partition:standby", "pause:n2"}, ""},
		{"cut-then-kill:cancel", []string{"cut-then-kill:cancel"}, ""},
		{"explode", nil, "unknown fault"},
		{"pause:n9", nil, "target must be"},
		{"partition:diagonal", nil, "want standby"},
		{"kill-primary:n1", nil, "takes no target"},
	} {
		got, err := Parse(tc.in, nodes)
		if tc.wantErr != "" {
			assert.ErrorIs(t, err, ErrConfig, tc.in)
			assert.ErrorContains(t, err, tc.wantErr, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		var names []string
		for _, f := range got {
			names = append(names, f.String())
		}
		assert.Equal(t, tc.want, names, tc.in)
	}
	all, err := Parse("all", nodes)
	require.NoError(t, err)
	assert.Len(t, all, len(Kinds))
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]string{"": "auto", "auto": "auto", "none": "none", "external": "external",
		"promote:n3": "promote:n3", "promote:lagging": "promote:lagging"} {
		p, err := ParsePolicy(in, nodes)
		require.NoError(t, err, in)
		assert.Equal(t, want, p.String())
	}
	for _, bad := range []string{"promote:n7", "promote", "sometimes", "none:n1"} {
		_, err := ParsePolicy(bad, nodes)
		assert.ErrorIs(t, err, ErrConfig, bad)
	}
}

func TestPlanSameSeedSameSchedule(t *testing.T) {
	faults, err := Parse("kill-primary,partition,pause,cancel-sync-wait", nodes)
	require.NoError(t, err)
	a := Plan(42, faults, 10*time.Second, 5*time.Minute)
	b := Plan(42, faults, 10*time.Second, 5*time.Minute)
	c := Plan(43, faults, 10*time.Second, 5*time.Minute)
	require.NotEmpty(t, a)
	assert.Equal(t, a, b, "same seed, same plan")
	assert.NotEqual(t, a, c, "another seed, another plan")
	kinds := map[string]bool{}
	for i, st := range a {
		kinds[st.Fault.Kind] = true
		assert.LessOrEqual(t, st.At+st.Hold, 5*time.Minute, "every window closes within the run")
		if i > 0 {
			assert.Greater(t, st.At, a[i-1].At+a[i-1].Hold, "one fault at a time")
		}
	}
	assert.Len(t, kinds, 4, "every kind is drawn over 30 slots")
	assert.Empty(t, Plan(1, nil, time.Second, time.Minute))
}

// Only the standbys commits wait for are cut off by the cut-off faults;
// with none synchronous, any standby.
func TestSyncOnly(t *testing.T) {
	rs := []results.ReplicationState{{Name: "n2", SyncState: "potential"}, {Name: "n3", SyncState: "sync"}}
	assert.Equal(t, []string{"n3"}, syncOnly([]string{"n2", "n3"}, rs))
	rs = []results.ReplicationState{{Name: "n3", SyncState: "quorum"}, {Name: "n2", SyncState: "quorum"}}
	assert.Equal(t, []string{"n2", "n3"}, syncOnly([]string{"n2", "n3"}, rs), "the standbys' order, not the view's")
	rs = []results.ReplicationState{{Name: "n2", SyncState: "async"}, {Name: "n3", SyncState: "async"}}
	assert.Empty(t, syncOnly([]string{"n2", "n3"}, rs))
	assert.Empty(t, syncOnly([]string{"n2"}, []results.ReplicationState{{Name: "n3", SyncState: "sync"}}), "not a standby of this primary")
}

func TestGrudgeFor(t *testing.T) {
	g, targets := grudgeFor("standby", 1, "n1", []string{"n2", "n3"})
	assert.Equal(t, cluster.Grudge{"n1": {"n3"}}, g)
	assert.Equal(t, []string{"n3"}, targets)
	g, _ = grudgeFor("primary", 0, "n2", []string{"n1", "n3"})
	assert.Equal(t, [][2]string{{"n1", "n2"}, {"n2", "n3"}}, g.Pairs())
	g, targets = grudgeFor("halves", 2, "n1", []string{"n2", "n3"})
	assert.Equal(t, []string{"n3"}, targets)
	assert.Equal(t, [][2]string{{"n1", "n3"}, {"n2", "n3"}}, g.Pairs())
}

// TestIntegrationCancelSyncWait shows the documented hole: with a standby
// cut off, a commit waits; pg_cancel_backend makes it return success with
// the warning, the row is visible on the primary and missing on the cut-off
// standby.
func TestIntegrationCancelSyncWait(t *testing.T) {
	if err := local.Preflight(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	if _, err := local.FindBinaries(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "sc-nemesis-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	defer os.RemoveAll(dir)
	c, err := local.Up(ctx, local.Options{Dir: dir, Subnet: local.AutoSubnet})
	require.NoError(t, err)
	defer c.Close(ctx)
	require.NoError(t, cluster.Exec(ctx, c, "n1", "CREATE TABLE t (v int)"))
	require.NoError(t, c.Partition(ctx, cluster.Grudge{"n1": {"n3"}}))

	var warning strings.Builder
	cfg, err := pgx.ParseConfig(c.ConnString("n1", true))
	require.NoError(t, err)
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { warning.WriteString(n.Message) }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "INSERT INTO t VALUES (7)")
		done <- err
	}()
	var pids []int
	require.Eventually(t, func() bool {
		pids, err = CancelSyncWaiters(ctx, c, "n1")
		return err == nil && len(pids) == 1
	}, 10*time.Second, 50*time.Millisecond, "the commit waits for n3, and is cancelled")
	select {
	case err := <-done:
		require.NoError(t, err, "the client is told success")
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled commit did not return")
	}
	assert.Contains(t, warning.String(), "canceling wait for synchronous replication")
	rows := map[string]int{}
	for _, n := range []string{"n1", "n3"} {
		cn, err := pgx.Connect(ctx, c.ConnString(n, true))
		require.NoError(t, err)
		var k int
		require.NoError(t, cn.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&k))
		cn.Close(ctx)
		rows[n] = k
	}
	assert.Equal(t, 1, rows["n1"], "visible on the primary")
	assert.Equal(t, 0, rows["n3"], "missing on the cut-off standby")
	require.NoError(t, c.Heal(ctx))
}

func TestParseSequence(t *testing.T) {
	seq, err := ParseSequence("partition n3; wait 2s\n# a comment\nkill primary;promote n3 ; heal\ncancel-sync-wait; promote most-advanced; crash standby", nodes)
	require.NoError(t, err)
	assert.Equal(t, "partition n3; wait 2s; kill primary; promote n3; heal; cancel-sync-wait; promote most-advanced; crash standby", seq.String())
	assert.Equal(t, 2*time.Second, seq[1].Wait)
	for in, want := range map[string]string{
		"explode n1":     "unknown step",
		"kill":           "takes 1 to 1",
		"kill n9":        "is not primary, standby or a node",
		"wait soon":      "want a duration",
		"heal n1":        "takes 0 to 0",
		"partition":      "takes 1 to 3",
		"promote n1 n2":  "takes 0 to 1",
		"pause n1 n2 n3": "takes 1 to 1",
		" ; ; ":          "no step",
	} {
		_, err := ParseSequence(in, nodes)
		assert.ErrorIs(t, err, ErrConfig, in)
		assert.ErrorContains(t, err, want, in)
	}
	empty, err := ParseSequence("", nodes)
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// A fault is aimed from the whole cluster's roles: an answer that misses
// the primary or a standby (a dropped connection) is asked again, and
// after the wait the last answer is what there is.
func TestSettledRoles(t *testing.T) {
	answers := [][]string{{""}, {"", "n2"}, {"n1", "n2", "n3"}}
	calls := 0
	roles := func() (string, []string) {
		a := answers[min(calls, len(answers)-1)]
		calls++
		return a[0], a[1:]
	}
	p, s := settledRoles(roles, 2, 5*time.Second)
	assert.Equal(t, "n1", p)
	assert.Equal(t, []string{"n2", "n3"}, s)
	assert.Equal(t, 3, calls)

	calls = 0
	start := time.Now()
	p, s = settledRoles(func() (string, []string) { calls++; return "", []string{"n2"} }, 2, 300*time.Millisecond)
	assert.Equal(t, "", p, "no primary after the wait: the fault is skipped, saying so")
	assert.Equal(t, []string{"n2"}, s)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Greater(t, calls, 1)
}
