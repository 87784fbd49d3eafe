package nemesis

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/results"
)

// memRecorder keeps the history in memory.
type memRecorder struct {
	mu    sync.Mutex
	start time.Time
	ops   []results.Op
}

func (m *memRecorder) Now() int64 { return int64(time.Since(m.start)) }

func (m *memRecorder) Append(op results.Op) (results.Op, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	op.V, op.Index = results.SchemaVersion, int64(len(m.ops))
	if op.Time == 0 {
		op.Time = m.Now()
	}
	m.ops = append(m.ops, op)
	return op, nil
}

// completion returns the completion of the first step f in phase, or nil.
func (m *memRecorder) completion(f, phase string) *results.Op {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.ops {
		op := &m.ops[i]
		if op.Type != results.Invoke && op.F == f && op.Fault != nil && op.Fault.Phase == phase {
			return op
		}
	}
	return nil
}

type fixedTopo struct {
	mu sync.Mutex
	p  string
}

func (f *fixedTopo) Primary() string { f.mu.Lock(); defer f.mu.Unlock(); return f.p }
func (f *fixedTopo) SetPrimary(n string) {
	f.mu.Lock()
	f.p = n
	f.mu.Unlock()
}

// liar is a real local cluster whose chosen steps claim success and do
// nothing: a backend bug the nemesis must catch by observing the cluster.
type liar struct {
	*local.Cluster
	noop map[string]bool
}

func (l *liar) Kill(ctx context.Context, node string) error {
	if l.noop["kill"] {
		return nil
	}
	return l.Cluster.Kill(ctx, node)
}

func (l *liar) Pause(ctx context.Context, node string) error {
	if l.noop["pause"] {
		return nil
	}
	return l.Cluster.Pause(ctx, node)
}

func (l *liar) Partition(ctx context.Context, g cluster.Grudge) error {
	if l.noop["partition"] {
		return nil
	}
	return l.Cluster.Partition(ctx, g)
}

func upLocal(t testing.TB) *local.Cluster {
	t.Helper()
	if err := local.Preflight(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	if _, err := local.FindBinaries(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	dir, err := os.MkdirTemp("", "sc-nemesis-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	c, err := local.Up(context.Background(), local.Options{Dir: dir, Subnet: local.AutoSubnet})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close(context.Background())) })
	return c
}

func newTestNemesis(c cluster.Cluster, policy Policy) (*Nemesis, *memRecorder) {
	rec := &memRecorder{start: time.Now()}
	return New(c, Config{Interval: time.Second, Failover: policy, WaitHealthy: 20 * time.Second}, rec, &fixedTopo{p: "n1"}), rec
}

// A backend that claims a kill, a pause or a partition it did not make is
// caught: the step is recorded as not taken effect, no promotion follows
// the kill that did not happen, and the run cannot be valid.
func TestIntegrationFaultsThatDidNotHappen(t *testing.T) {
	c := upLocal(t)
	ctx := context.Background()
	for _, tc := range []struct {
		lie, fault, step, phase, want string
	}{
		{"kill", KillPrimary, KillPrimary, results.PhaseStart, "still has server processes"},
		{"pause", Pause, Pause, results.PhaseStart, "not frozen"},
		{"partition", Partition, Partition, results.PhaseStart, "still connects"},
	} {
		t.Run(tc.lie, func(t *testing.T) {
			n, rec := newTestNemesis(&liar{Cluster: c, noop: map[string]bool{tc.lie: true}}, Policy{Mode: FailoverAuto})
			target := ""
			if tc.fault == Pause || tc.fault == Partition {
				target = map[string]string{Pause: "standby", Partition: "standby"}[tc.fault]
			}
			require.NoError(t, n.strike(ctx, Step{Fault: Fault{Kind: tc.fault, Target: target}, Hold: 300 * time.Millisecond}))
			op := rec.completion(tc.step, tc.phase)
			require.NotNil(t, op, "the step is in the history")
			assert.Equal(t, results.Info, op.Type)
			assert.Contains(t, op.Error, tc.want)
			assert.Contains(t, op.Error, ErrNotVerified.Error())
			require.NotEmpty(t, n.Errors())
			if tc.lie == "kill" {
				assert.Nil(t, rec.completion("failover", results.PhaseStep), "no promotion after a kill that did not happen")
				p, err := cluster.FindPrimary(ctx, c)
				require.NoError(t, err)
				assert.Equal(t, "n1", p, "one primary, the old one")
			}
			r := checker.CheckHistory(ctx, &results.History{Ops: rec.ops}, checker.Options{})
			assert.Equal(t, checker.Unknown, r.Find(checker.NameFaults).Verdict)
			assert.NotEqual(t, checker.Valid, r.Verdict)
		})
	}
}

// The real steps, observed: a kill leaves no process, a promotion one
// writable primary, a pause stops every process, a partition cuts exactly
// its links; and a cancel of the sync waiters that finds none (ANY 1 keeps
// committing with one standby cut off) did not take effect.
func TestIntegrationFaultsVerified(t *testing.T) {
	c := upLocal(t)
	ctx := context.Background()
	n, rec := newTestNemesis(c, Policy{Mode: FailoverAuto})
	for _, f := range []Fault{{Kind: Pause, Target: "standby"}, {Kind: Partition, Target: "halves"}, {Kind: KillPrimary}} {
		require.NoError(t, n.strike(ctx, Step{Fault: f, Hold: 300 * time.Millisecond}))
	}
	assert.Empty(t, n.Errors(), "every real step took effect")
	for _, s := range []string{Pause, Partition, KillPrimary, "failover"} {
		phase := results.PhaseStart
		if s == "failover" {
			phase = results.PhaseStep
		}
		op := rec.completion(s, phase)
		require.NotNil(t, op, s)
		assert.Equal(t, results.OK, op.Type, "%s: %s", s, op.Error)
		assert.NotEmpty(t, op.Fault.Verified, s)
	}
	assert.Contains(t, rec.completion("failover", results.PhaseStep).Fault.Verified, "the only primary")
	r := checker.CheckHistory(ctx, &results.History{Ops: rec.ops}, checker.Options{})
	assert.Equal(t, checker.Valid, r.Find(checker.NameFaults).Verdict, r.Find(checker.NameFaults).Summary)

	// No client writes: a standby cut off holds no commit, and a cancel of
	// the waiting commits finds none. The step did not take effect.
	rec2 := &memRecorder{start: time.Now()}
	n.rec = rec2
	require.NoError(t, n.strike(ctx, Step{Fault: Fault{Kind: CancelSyncWait}, Hold: 600 * time.Millisecond}))
	op := rec2.completion(CancelSyncWait, results.PhaseStep)
	require.NotNil(t, op)
	assert.Equal(t, results.Info, op.Type, "nothing waited: the fault had nothing to act on")
	assert.Contains(t, op.Error, "no commit was waiting")
	r = checker.CheckHistory(ctx, &results.History{Ops: rec2.ops}, checker.Options{})
	assert.Equal(t, checker.Unknown, r.Find(checker.NameFaults).Verdict)

	// Writes in flight, and ANY 2: commits wait for the cut-off standby
	// and are cancelled.
	p := n.topo.Primary()
	require.NoError(t, cluster.Exec(ctx, c, p, "CREATE TABLE IF NOT EXISTS inflight (v int)"))
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for wctx.Err() == nil {
				conn, err := pgx.Connect(wctx, c.ConnString(p, true))
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				for wctx.Err() == nil {
					if _, err := conn.Exec(wctx, "INSERT INTO inflight VALUES (1)"); err != nil {
						break
					}
				}
				conn.Close(context.Background())
			}
		})
	}
	defer func() { stop(); wg.Wait() }()
	sync, err := cluster.CurrentSync(ctx, c, p)
	require.NoError(t, err)
	require.Equal(t, 2, sync.Num, "ANY 2: a cut-off standby holds every commit")
	rec3 := &memRecorder{start: time.Now()}
	n.rec = rec3
	require.NoError(t, n.strike(ctx, Step{Fault: Fault{Kind: CancelSyncWait}, Hold: 600 * time.Millisecond}))
	op = rec3.completion(CancelSyncWait, results.PhaseStep)
	require.NotNil(t, op)
	assert.Equal(t, results.OK, op.Type, op.Error)
	assert.Contains(t, op.Fault.Verified, "waiting commits cancelled")

	// The run's context ends during the health check before a fault (an
	// interrupt, or the time limit and overrun ran out): the check is
	// recorded, the fault is not struck, and a step says so, so that the
	// faults check cannot call the run valid.
	rec4 := &memRecorder{start: time.Now()}
	n.rec = rec4
	done, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, n.strike(done, Step{Fault: Fault{Kind: LagThenKill}, Hold: 600 * time.Millisecond}))
	require.NotNil(t, rec4.completion("health", results.PhaseInfo), "the health check ran")
	var fs []string
	for _, op := range rec4.ops {
		if op.Type != results.Invoke {
			fs = append(fs, op.F)
		}
	}
	assert.Equal(t, []string{"health", LagThenKill}, fs, "no fault struck once the run's context ended")
	op = rec4.completion(LagThenKill, results.PhaseInfo)
	require.NotNil(t, op)
	assert.Equal(t, results.Info, op.Type)
	assert.Contains(t, op.Error, "not struck: the run was interrupted")
}

// With one synchronous standby (FIRST 1 (n3, n2)) a cut-off fault cuts
// that one off whatever its pick: cutting off the potential standby holds
// no commit, and patroni-cancel-sync-wait's seed 1 cut Patroni's
// asynchronous standby twice and found nothing to lose.
func TestIntegrationCutOffTheSyncStandby(t *testing.T) {
	c := upLocal(t)
	ctx := context.Background()
	require.NoError(t, cluster.SetSyncStandbys(ctx, c, "n1", "FIRST 1 (n3, n2)"))
	require.Eventually(t, func() bool {
		rs, err := cluster.Replication(ctx, c, "n1")
		return err == nil && slices.Equal(syncOnly([]string{"n2", "n3"}, rs), []string{"n3"})
	}, 10*time.Second, 50*time.Millisecond, "n3 sync, n2 potential")
	n, _ := newTestNemesis(c, Policy{Mode: FailoverAuto})
	for pick := range uint32(2) {
		rec := &memRecorder{start: time.Now()}
		n.rec = rec
		require.NoError(t, n.strike(ctx, Step{Fault: Fault{Kind: CancelSyncWait}, Hold: 400 * time.Millisecond, Pick: pick}))
		op := rec.completion(Partition, results.PhaseStart)
		require.NotNil(t, op)
		assert.Equal(t, results.OK, op.Type, op.Error)
		assert.Equal(t, []string{"n3"}, op.Fault.Targets, "pick %d: the synchronous standby", pick)
		assert.Contains(t, op.Fault.Detail, "commits wait for n3")
		require.NotNil(t, rec.completion("heal", results.PhaseStop), "healed")
	}
}

// What a fault needs before its kill is brought about, or observed: on an
// idle primary lag-then-kill writes WAL of its own until a standby falls
// behind the congested link, then kills and fails over; cut-then-kill:cancel
// waits for a commit to wait for the cut-off standby, finds none (nobody
// writes) and kills nothing; with clients' writes that do not wait for the
// standbys, lag-then-kill's standbys fall behind all the same.
func TestIntegrationLagVerified(t *testing.T) {
	c := upLocal(t)
	ctx := context.Background()
	n, rec := newTestNemesis(c, Policy{Mode: FailoverAuto})
	step := Step{Fault: Fault{Kind: LagThenKill}, Hold: 400 * time.Millisecond}
	require.NoError(t, n.strike(ctx, step))
	op := rec.completion("lag", results.PhaseStep)
	require.NotNil(t, op)
	assert.Equal(t, results.OK, op.Type, op.Error)
	assert.Contains(t, op.Fault.Detail, "KiB of padding into "+padTable)
	assert.Contains(t, op.Fault.Detail, "bytes behind")
	kill := rec.completion(KillPrimary, results.PhaseStart)
	require.NotNil(t, kill, "the kill follows the lag the nemesis made itself")
	assert.Equal(t, results.OK, kill.Type, kill.Error)
	require.NotNil(t, rec.completion("uncongest", results.PhaseStop), "the limit is lifted")
	assert.Empty(t, n.Errors())

	before, err := cluster.FindPrimary(ctx, c)
	require.NoError(t, err)
	recc := &memRecorder{start: time.Now()}
	n.rec = recc
	t0 := time.Now()
	require.NoError(t, n.strike(ctx, Step{Fault: Fault{Kind: CutThenKill, Target: "cancel"}, Hold: 400 * time.Millisecond}))
	op = recc.completion(KillPrimary, results.PhaseStart)
	require.NotNil(t, op)
	assert.Equal(t, results.Info, op.Type)
	assert.Contains(t, op.Error, "no commit was waiting")
	assert.GreaterOrEqual(t, time.Since(t0), waitersWait, "it waited for a commit to wait")
	assert.Nil(t, recc.completion("failover", results.PhaseStep), "no failover without the kill")
	p, err := cluster.FindPrimary(ctx, c)
	require.NoError(t, err)
	require.Equal(t, before, p, "the primary was not killed")
	n.rec = rec

	require.NoError(t, cluster.Exec(ctx, c, p, "CREATE TABLE IF NOT EXISTS lagging (v text)"))
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			conn, err := pgx.Connect(wctx, c.ConnString(p, true))
			if err != nil {
				return
			}
			defer conn.Close(context.Background())
			if _, err := conn.Exec(wctx, "SET synchronous_commit = local"); err != nil {
				return
			}
			for wctx.Err() == nil {
				if _, err := conn.Exec(wctx, "INSERT INTO lagging SELECT repeat('x', 2000) FROM generate_series(1, 20)"); err != nil {
					return
				}
			}
		})
	}
	rec2 := &memRecorder{start: time.Now()}
	n.rec = rec2
	err = n.strike(ctx, step)
	stop()
	wg.Wait()
	require.NoError(t, err)
	op = rec2.completion("lag", results.PhaseStep)
	require.NotNil(t, op)
	assert.Equal(t, results.OK, op.Type, op.Error)
	assert.Contains(t, op.Fault.Detail, "bytes behind")
	kill = rec2.completion(KillPrimary, results.PhaseStart)
	require.NotNil(t, kill, "the kill follows the lag")
	assert.Equal(t, results.OK, kill.Type, kill.Error)
}

// Two nodes out of recovery after a step: with strongcheck's own failover
// the step fails (it fences before it promotes, so this is its bug); with
// an external one it is the manager's state, recorded in the step's detail
// and listed by the faults check, which stays valid.
func TestIntegrationTwoPrimaries(t *testing.T) {
	c := upLocal(t)
	ctx := context.Background()
	require.NoError(t, cluster.Exec(ctx, c, "n2", "SELECT pg_promote()"))
	require.Eventually(t, func() bool {
		prim := 0
		for _, s := range cluster.NodeStates(ctx, c) {
			if s.Role == string(cluster.Primary) {
				prim++
			}
		}
		return prim == 2
	}, 20*time.Second, 100*time.Millisecond, "n1 and n2 out of recovery")
	for _, tc := range []struct {
		mode string
		ok   bool
		want checker.Verdict
	}{{FailoverAuto, false, checker.Unknown}, {FailoverExternal, true, checker.Valid}} {
		t.Run(tc.mode, func(t *testing.T) {
			n, rec := newTestNemesis(c, Policy{Mode: tc.mode})
			ok, err := n.record(ctx, n.open(Partition), "heal", results.PhaseStop, nil, func(f *results.Fault) error {
				f.Verified = "nothing to do"
				return nil
			})
			require.NoError(t, err)
			assert.Equal(t, tc.ok, ok)
			op := rec.completion("heal", results.PhaseStop)
			require.NotNil(t, op)
			if tc.ok {
				assert.Contains(t, op.Fault.Detail, "n1 and n2 out of recovery at once")
				assert.Empty(t, n.Errors())
			} else {
				assert.Contains(t, op.Error, cluster.ErrSplitBrain.Error())
			}
			r := checker.CheckHistory(ctx, &results.History{Ops: rec.ops}, checker.Options{})
			f := r.Find(checker.NameFaults)
			assert.Equal(t, tc.want, f.Verdict, f.Summary)
			require.Len(t, f.Faults.TwoPrimaries, 1)
			assert.Equal(t, []string{"n1", "n2"}, f.Faults.TwoPrimaries[0].Primaries)
		})
	}
}
