package workload_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker/elle"
	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
	"github.com/strongcheck/strongcheck/workload/internal/pgtest"
)

// The keys and elements of the interleaving: T1 (the pivot) reads key A
// and appends elemT1 to key B, T2 (the writer) appends elemT2 to A, T3
// (read only) reads A and then B.
const (
	keyA, keyB     = 0, 1
	elemT1, elemT2 = 1, 2
	// ssiWait bounds every wait of the test: a statement, gdb attaching,
	// the breakpoint being hit, gdb detaching, T2's COMMIT returning.
	ssiWait = 30 * time.Second
)

// TestIntegrationSSICommitWindow proves, on a real server, a PostgreSQL 15
// SERIALIZABLE bug and that Elle's checker and elle.ReadOnlyAnomaly name
// it. Fekete's read-only anomaly, T1 -rw-> T2 -wr-> T3 -rw-> T1, commits
// when T1 commits and T3 takes its snapshot inside T2's commit window.
// T2's COMMIT runs CommitTransaction (xact.c):
// PreCommit_CheckForSerializationFailure (predicate.c) sets T2's
// prepareSeqNo and SXACT_FLAG_PREPARED, then ProcArrayEndTransaction makes
// T2 visible to new snapshots, and only afterwards does
// ResourceOwnerRelease (resowner.c) call ReleasePredicateLocks, which sets
// SXACT_FLAG_COMMITTED. A gdb breakpoint on ReleasePredicateLocks
// holds T2 between the two. T3 (SERIALIZABLE READ ONLY, as the workload
// begins its read-only transactions) then sees T2's append to A. T1
// commits: its ReleasePredicateLocks gives a committing transaction
// SXACT_FLAG_CONFLICT_OUT only for a conflict out to a transaction
// SxactIsCommitted, which T2 is not yet, so T1 commits without the flag.
// T3's read of B meets T1's append, and CheckForSerializableConflictOut
// lets a read-only reader go ("Read-only transaction will appear to run
// first") when the committed writer has no conflict out: T3 misses T1's
// append and commits, and so does T2. Elle finds exactly that one G2-item.
//
// The control runs the same statements with T2's COMMIT finished before
// T3 begins: T1 then commits with SXACT_FLAG_CONFLICT_OUT, and T3's read
// of B fails with a serialization failure (40001, "Canceled on conflict
// out to pivot"). The anomaly needs the window.
func TestIntegrationSSICommitWindow(t *testing.T) {
	gdb, err := exec.LookPath("gdb")
	if err != nil {
		t.Skip("gdb is not on PATH: the test holds a backend inside its COMMIT with a gdb breakpoint " +
			"(scripts/install-deps.sh installs gdb)")
	}
	s := startServer(t)
	admin := connect(t, s)
	w := newWorkload(t, "append", workload.Options{Isolation: workload.Serializable, Keys: 2})

	t.Run("T2 held in its commit window", func(t *testing.T) {
		setup(t, w, admin)
		h, err := interleave(t, s, gdb)
		require.NoError(t, err, "T3's read of B and its COMMIT succeed inside T2's commit window")
		addFinal(t, h, w, admin)
		assertReadOnlyAnomaly(t, h.ops)
	})

	t.Run("control: T2 committed before T3 begins", func(t *testing.T) {
		setup(t, w, admin)
		h, err := interleave(t, s, "")
		var pe *pgconn.PgError
		require.ErrorAs(t, err, &pe, "T3's read of B or its COMMIT fails")
		assert.Equal(t, "40001", pe.Code, "serialization_failure: %s (%s)", pe.Message, pe.Detail)
		t.Logf("T3: %s (%s)", pe.Message, pe.Detail)
		addFinal(t, h, w, admin)
		r := elle.Check(context.Background(), h.ops, elle.Options{Model: "serializable"})
		assert.Equal(t, elle.Valid, r.Verdict, r.Summary)
	})
}

// interleave runs the sequence on three new connections and records it in
// a new history. With gdbPath, T2's backend is held at
// ReleasePredicateLocks from its COMMIT until T3 has finished; with "",
// T2's COMMIT returns before T3 begins. It returns the error of T3's read
// of B or of T3's COMMIT; every other step must succeed.
func interleave(t *testing.T, s *pgtest.Server, gdbPath string) (*history, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ssiWait)
	defer cancel()
	h := &history{start: time.Now()}
	c1, c2, c3 := connect(t, s), connect(t, s), connect(t, s)
	var pid2 int
	require.NoError(t, c2.PgxConn().QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid2))

	t1 := beginTxn(ctx, t, h, c1, 0, results.ReadOf(keyA, nil), results.Append(keyB, elemT1))
	require.Equal(t, []int64{}, t1.must(ctx, t), "T1 reads A before T2's append")
	t1.must(ctx, t)
	t2 := beginTxn(ctx, t, h, c2, 1, results.Append(keyA, elemT2))
	t2.must(ctx, t)

	t2done := make(chan error, 1)
	t2returned := false
	var g *gdbHold
	if gdbPath != "" {
		g = holdAt(t, gdbPath, pid2, "ReleasePredicateLocks")
		go func() { t2done <- t2.commit(ctx) }()
		t.Cleanup(func() { // on failure: T2 released and its COMMIT returned before its connection closes
			if !t2returned {
				_ = g.release()
				select {
				case <-t2done:
				case <-time.After(ssiWait):
				}
			}
		})
		g.waitHit(t, t2done)
	} else {
		t2done <- t2.commit(ctx)
	}

	t3 := beginTxn(ctx, t, h, c3, 2, results.ReadOf(keyA, nil), results.ReadOf(keyB, nil))
	require.Equal(t, []int64{elemT2}, t3.must(ctx, t), "T3 sees T2's append: T2 is visible")
	require.NoError(t, t1.commit(ctx), "T1 COMMIT")
	_, err := t3.step(ctx)
	if err != nil {
		t3.abort(err)
	} else {
		err = t3.commit(ctx)
	}
	if g != nil {
		require.NoError(t, g.release(), "gdb deletes its breakpoint and detaches: %s", g.log())
		t.Logf("gdb:\n%s", g.log())
	}
	select {
	case e := <-t2done:
		t2returned = true
		require.NoError(t, e, "T2 COMMIT")
	case <-time.After(ssiWait):
		require.FailNow(t, "T2's COMMIT did not return", "after %s", ssiWait)
	}
	return h, err
}

// addFinal records the workload's final reads, as the harness does.
func addFinal(t *testing.T, h *history, w workload.Workload, c *workload.Conn) {
	t.Helper()
	for _, op := range final(t, w, c) {
		op.Node = "n1"
		h.add(op)
	}
}

// assertReadOnlyAnomaly checks that Elle finds in ops exactly one
// anomaly, one G2-item, of the read-only anomaly's shape with T1
// (process 0) the pivot, T2 (1) the writer and T3 (2) the reader.
func assertReadOnlyAnomaly(t *testing.T, ops []results.Op) {
	t.Helper()
	r := elle.Check(context.Background(), ops, elle.Options{Model: "serializable"})
	t.Log(r.Summary)
	require.Equal(t, elle.Invalid, r.Verdict, r.Summary)
	require.Len(t, r.Anomalies, 1, r.Summary)
	a := r.Anomalies[0]
	require.Equal(t, elle.G2Item, a.Kind, r.Summary)
	require.Equal(t, 1, a.Count, r.Summary)
	require.NotEmpty(t, a.Cases)
	c := a.Cases[0]
	t.Log(c.Text)
	roles, ok := elle.ReadOnlyAnomaly(c)
	require.True(t, ok, "the read-only anomaly's shape: %+v", c)
	assert.Equal(t, 0, c.Txns[roles.Pivot].Process, "T1 is the pivot")
	assert.Equal(t, 1, c.Txns[roles.Writer].Process, "T2 is the writer")
	assert.Equal(t, 2, c.Txns[roles.Reader].Process, "T3 is the reader")
}

// ssiTxn is one list-append transaction run one micro-operation at a time
// with the workload's own statements, and recorded in a history as the
// harness records it: an invoke, then an ok or fail completion.
type ssiTxn struct {
	h    *history
	inv  results.Op
	tx   pgx.Tx
	done []results.Mop // the micro-operations run, reads with their lists
}

// beginTxn records the invoke of mops by process proc and begins the
// transaction as the workload does: SERIALIZABLE, READ ONLY when mops
// only read.
func beginTxn(ctx context.Context, t *testing.T, h *history, c *workload.Conn, proc int, mops ...results.Mop) *ssiTxn {
	t.Helper()
	x := &ssiTxn{h: h}
	x.inv = h.add(results.Op{Type: results.Invoke, F: results.FTxn, Workload: results.WorkloadAppend,
		Process: results.Process(proc), Node: "n1", Txn: mops})
	txo := pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly}
	for _, m := range mops {
		if !m.IsRead() {
			txo.AccessMode = pgx.ReadWrite
		}
	}
	tx, err := c.PgxConn().BeginTx(ctx, txo)
	require.NoError(t, err, "process %d: BEGIN", proc)
	x.tx = tx
	return x
}

// step runs the next micro-operation as the workload's Do runs it and
// returns the list it read (nil for an append).
func (x *ssiTxn) step(ctx context.Context) ([]int64, error) {
	m, err := workload.RunMop(ctx, x.tx, x.inv.Txn[len(x.done)])
	if err != nil {
		return nil, fmt.Errorf("%s of key %d: %w", m.F, m.Key, err)
	}
	x.done = append(x.done, m)
	return m.Read, nil
}

// must runs the next micro-operation, which must succeed.
func (x *ssiTxn) must(ctx context.Context, t *testing.T) []int64 {
	t.Helper()
	vals, err := x.step(ctx)
	require.NoError(t, err, "process %d", x.inv.Process)
	return vals
}

// commit commits and records the completion: ok, or fail on an error.
func (x *ssiTxn) commit(ctx context.Context) error {
	err := x.tx.Commit(ctx)
	x.complete(err)
	return err
}

// abort rolls back after err and records the fail completion.
func (x *ssiTxn) abort(err error) {
	ctx, cancel := context.WithTimeout(context.Background(), ssiWait)
	defer cancel()
	_ = x.tx.Rollback(ctx)
	x.complete(err)
}

func (x *ssiTxn) complete(err error) {
	op := x.inv
	op.Type, op.Txn = results.OK, x.done
	if err != nil {
		op.Type, op.Txn, op.Error = results.Fail, x.inv.Txn, err.Error()
	}
	op.Latency = int64(time.Since(x.h.start)) - x.inv.Time
	x.h.add(op)
}

// gdbHold is a gdb attached to one backend with a breakpoint: the backend
// stops there until release, which deletes the breakpoint and detaches.
// gdb and the test synchronise through marker files in a t.TempDir().
type gdbHold struct {
	cmd      *exec.Cmd
	dir      string
	exited   chan struct{} // closed once gdb was reaped; err is then its exit
	err      error
	released bool
}

// holdAt attaches gdb to pid with a breakpoint on fn and returns once it
// is attached. gdb is always ended and reaped by t's Cleanup.
func holdAt(t *testing.T, gdbPath string, pid int, fn string) *gdbHold {
	t.Helper()
	g := &gdbHold{dir: t.TempDir(), exited: make(chan struct{})}
	mark := g.mark
	g.cmd = exec.Command(gdbPath, "-p", strconv.Itoa(pid), "-batch", "-nx",
		"-ex", "set pagination off",
		"-ex", "set debuginfod enabled off",
		"-ex", "handle SIGUSR1 SIGUSR2 SIGPIPE SIGALRM SIGTERM nostop noprint pass",
		"-ex", "break "+fn,
		"-ex", "shell touch "+mark("attached"),
		"-ex", "continue",
		"-ex", "bt 8",
		"-ex", "shell touch "+mark("hit"),
		// Bounded: gdb lets the backend go after ssiWait whatever happens.
		"-ex", fmt.Sprintf("shell for i in $(seq %d); do [ -f %s ] && break; sleep 0.05; done",
			int(ssiWait/(50*time.Millisecond)), mark("go")),
		"-ex", "delete",
		"-ex", "detach",
		"-ex", "quit")
	logf, err := os.Create(mark("gdb.log"))
	require.NoError(t, err)
	defer logf.Close() // gdb keeps its own descriptor
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, g.cmd.Start(), "start gdb")
	go func() { g.err = g.cmd.Wait(); close(g.exited) }()
	t.Cleanup(func() {
		_ = g.release()
		select {
		case <-g.exited:
		default:
			_ = g.cmd.Process.Kill() // by its PID
			<-g.exited
		}
	})
	g.waitFor(t, "attached", nil)
	return g
}

func (g *gdbHold) mark(name string) string { return filepath.Join(g.dir, name) }

func (g *gdbHold) log() string {
	b, _ := os.ReadFile(g.mark("gdb.log"))
	return string(b)
}

// waitHit waits until the backend stopped at the breakpoint. T2's COMMIT
// returning first (on t2done) fails the test: the breakpoint was missed.
func (g *gdbHold) waitHit(t *testing.T, t2done chan error) {
	t.Helper()
	g.waitFor(t, "hit", t2done)
	log := g.log()
	require.Contains(t, log, "Breakpoint 1, ", "the backend stopped at the breakpoint")
	require.Contains(t, log, "CommitTransactionCommand", "inside its COMMIT")
}

// waitFor waits, at most ssiWait, for gdb's marker file name; gdb exiting
// or T2's COMMIT returning (on t2done, when not nil) first fails t.
func (g *gdbHold) waitFor(t *testing.T, name string, t2done chan error) {
	t.Helper()
	deadline := time.After(ssiWait)
	for {
		if _, err := os.Stat(g.mark(name)); err == nil {
			return
		}
		select {
		case <-g.exited:
			require.FailNow(t, "gdb exited", "waiting for %q: %v\n%s", name, g.err, g.log())
		case err := <-t2done:
			t2done <- err
			require.FailNow(t, "T2's COMMIT returned before the breakpoint", "%v\n%s", err, g.log())
		case <-deadline:
			require.FailNow(t, "gdb timed out", "waiting %s for %q\n%s", ssiWait, name, g.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// release lets gdb delete the breakpoint and detach, which resumes the
// backend, and waits at most ssiWait for gdb to exit. A second call only
// reports how gdb ended.
func (g *gdbHold) release() error {
	if !g.released {
		g.released = true
		if err := os.WriteFile(g.mark("go"), nil, 0o600); err != nil {
			return fmt.Errorf("release gdb: %w", err)
		}
	}
	select {
	case <-g.exited:
	case <-time.After(ssiWait):
		return fmt.Errorf("gdb did not exit within %s", ssiWait)
	}
	if g.err != nil {
		return fmt.Errorf("gdb: %w", g.err)
	}
	if !strings.Contains(g.log(), ") detached]") { // "[Inferior 1 (process N) detached]"
		return errors.New("gdb did not detach")
	}
	return nil
}
