package workload_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
	"github.com/strongcheck/strongcheck/workload/internal/pgtest"
)

// startServer starts a throwaway server for tb, stopped and reaped in
// Cleanup, or skips tb with the reason this machine cannot run one.
func startServer(tb testing.TB) *pgtest.Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("integration test: -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgtest.Start(ctx, nil)
	if errors.Is(err, pgtest.ErrUnavailable) {
		tb.Skip(err.Error())
	}
	require.NoError(tb, err)
	tb.Cleanup(func() { assert.NoError(tb, s.Stop()) })
	return s
}

// connectBy opens a connection to s with open, closed when the test ends.
func connectBy(tb testing.TB, s *pgtest.Server, open func(context.Context, string) (*workload.Conn, error)) *workload.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := open(ctx, s.DSN)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func connect(tb testing.TB, s *pgtest.Server) *workload.Conn {
	tb.Helper()
	return connectBy(tb, s, workload.Connect)
}

func connectWith(tb testing.TB, s *pgtest.Server, opts workload.ConnOptions) *workload.Conn {
	tb.Helper()
	return connectBy(tb, s, func(ctx context.Context, dsn string) (*workload.Conn, error) {
		return workload.ConnectWith(ctx, dsn, opts)
	})
}

func newWorkload(tb testing.TB, name string, opts workload.Options) workload.Workload {
	tb.Helper()
	w, err := workload.New(name, opts)
	require.NoError(tb, err)
	return w
}

func setup(tb testing.TB, w workload.Workload, c *workload.Conn) []results.Op {
	tb.Helper()
	ops, err := w.Setup(context.Background(), c)
	require.NoError(tb, err)
	return ops
}

func final(tb testing.TB, w workload.Workload, c *workload.Conn) []results.Op {
	tb.Helper()
	ops, err := w.Final(context.Background(), c)
	require.NoError(tb, err)
	for _, op := range ops {
		require.Equal(tb, results.FFinal, op.F)
		require.Equal(tb, results.OK, op.Type)
		require.Equal(tb, w.Name(), op.Workload)
		require.Equal(tb, results.HarnessProcess, op.Process)
	}
	return ops
}

func do(c *workload.Conn, w workload.Workload, op results.Op, timeout time.Duration) results.Op {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return w.Do(ctx, c, op)
}

// client is how a test runs operations: over pgx with a context that
// bounds each (Connect), or as the harness's workers do (ConnectClient,
// Conn.Within), which sends the register's and set's single statements
// down the fast path.
type client struct {
	name    string
	connect func(testing.TB, *pgtest.Server) *workload.Conn
	do      func(*workload.Conn, workload.Workload, results.Op, time.Duration) results.Op
}

var clients = []client{
	{"pgx with a context", connect, do},
	{"fast path within a timeout", connectClient, within},
}

// connectClient opens a connection as the harness's workers do.
func connectClient(tb testing.TB, s *pgtest.Server) *workload.Conn {
	tb.Helper()
	return connectBy(tb, s, workload.ConnectClient)
}

// within runs op on c as the harness's workers do: bounded by Within.
func within(c *workload.Conn, w workload.Workload, op results.Op, timeout time.Duration) results.Op {
	return c.Within(context.Background(), timeout, func(ctx context.Context) results.Op { return w.Do(ctx, c, op) })
}

// TestIntegrationRegisterSerial runs one client against a sequential
// register model, through pgx and through the fast path: every ok read
// sees the last ok write or cas, a cas succeeds exactly when it expects
// the current value, and Final shows the model's values.
func TestIntegrationRegisterSerial(t *testing.T) {
	s := startServer(t)
	for _, cl := range clients {
		t.Run(cl.name, func(t *testing.T) { registerSerial(t, s, cl) })
	}
}

func registerSerial(t *testing.T, s *pgtest.Server, cl client) {
	c := cl.connect(t, s)
	do := cl.do
	w := newWorkload(t, "register", workload.Options{Keys: 3})
	assert.Empty(t, setup(t, w, connect(t, s)))
	model := map[string]int64{"k0": 0, "k1": 0, "k2": 0}
	rng := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	for range 600 {
		inv, write := w.Next(rng)
		got := do(c, w, inv, 5*time.Second)
		require.Empty(t, got.Error, "%+v", got)
		require.Equal(t, inv.F != results.FRead, write)
		switch inv.F {
		case results.FRead:
			require.Equal(t, results.OK, got.Type)
			require.Equal(t, model[inv.Key], *got.Value, "read %s", inv.Key)
		case results.FWrite:
			require.Equal(t, results.OK, got.Type)
			model[inv.Key] = *inv.Value
		case results.FCAS:
			// The generator expects the last value it saw, so on one client
			// every cas matches; a mismatching one is tested elsewhere.
			require.Equal(t, model[inv.Key], *inv.Expect)
			require.Equal(t, results.OK, got.Type)
			model[inv.Key] = *inv.Value
		}
		counts[inv.F+"/"+string(got.Type)]++
	}
	t.Logf("ops: %v", counts)
	require.Positive(t, counts["cas/ok"])
	fin := final(t, w, c)
	require.Len(t, fin, 3)
	for i, op := range fin {
		assert.Equal(t, "k"+string(rune('0'+i)), op.Key)
		assert.Equal(t, model[op.Key], *op.Value, op.Key)
	}

	// A cas whose expected value is not the current one is fail and
	// changes nothing.
	cur := model["k1"]
	got := do(c, w, results.Op{Type: results.Invoke, F: results.FCAS, Workload: "register", Key: "k1",
		Expect: results.Int(cur + 1000), Value: results.Int(999999)}, 5*time.Second)
	assert.Equal(t, results.Fail, got.Type)
	assert.Contains(t, got.Error, "cas")
	got = do(c, w, results.Op{Type: results.Invoke, F: results.FRead, Workload: "register", Key: "k1"}, 5*time.Second)
	assert.Equal(t, cur, *got.Value)

	// Setup again resets the state.
	setup(t, w, connect(t, s))
	for _, op := range final(t, w, c) {
		assert.Zero(t, *op.Value, op.Key)
	}
}

// run drives w with workers concurrent clients for n ops each and returns
// every completion. The workers take turns at the two clients: half go
// through pgx, half through the fast path.
func run(t *testing.T, s *pgtest.Server, w workload.Workload, workers, n int) []results.Op {
	var mu sync.Mutex
	var all []results.Op
	var wg sync.WaitGroup
	for i := range workers {
		cl := clients[i%len(clients)]
		c := cl.connect(t, s)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for range n {
				inv, _ := w.Next(rng)
				got := cl.do(c, w, inv, 10*time.Second)
				mu.Lock()
				all = append(all, got)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return all
}

// TestIntegrationConcurrent runs each workload with concurrent clients on
// a healthy server: nothing is info, and the final state is exactly what
// the ok operations imply.
func TestIntegrationConcurrent(t *testing.T) {
	s := startServer(t)
	admin := connect(t, s)

	t.Run("grantee may use the tables", func(t *testing.T) {
		_, err := admin.PgxConn().Exec(context.Background(), "CREATE ROLE sc_client LOGIN")
		require.NoError(t, err)
		dsn := strings.Replace(s.DSN, "user=postgres", "user=sc_client", 1)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		client, err := workload.Connect(ctx, dsn)
		require.NoError(t, err)
		defer client.Close(ctx)
		rng := rand.New(rand.NewPCG(3, 3))
		for _, name := range workload.Names() {
			w := newWorkload(t, name, workload.Options{Grantee: "sc_client", WritesOnly: true})
			setup(t, w, admin)
			inv, _ := w.Next(rng)
			got := w.Do(ctx, client, inv)
			assert.Equal(t, results.OK, got.Type, "%s: %+v", name, got)
			_, err := w.Final(ctx, client)
			assert.NoError(t, err, name)
		}
		noGrant := newWorkload(t, "set", workload.Options{WritesOnly: true})
		setup(t, noGrant, admin)
		inv, _ := noGrant.Next(rng)
		got := noGrant.Do(ctx, client, inv)
		assert.Equal(t, results.Fail, got.Type, "without the grant: permission denied (42501) is fail: %+v", got)
		assert.Contains(t, got.Error, "42501")
	})

	t.Run("register", func(t *testing.T) {
		w := newWorkload(t, "register", workload.Options{Keys: 2})
		setup(t, w, admin)
		ops := run(t, s, w, 4, 200)
		written := map[int64]string{0: ""}
		types := map[results.Type]int{}
		for _, op := range ops {
			types[op.Type]++
			require.NotEqual(t, results.Info, op.Type, "%+v", op)
			if op.Type == results.OK && op.F != results.FRead {
				written[*op.Value] = op.Key
			}
		}
		t.Logf("types: %v", types)
		for _, op := range ops { // every read value was written to that key (or is the initial 0)
			if op.F == results.FRead && op.Type == results.OK {
				k, ok := written[*op.Value]
				require.True(t, ok && (k == "" || k == op.Key), "read %+v of a value never written there", op)
			}
		}
		for _, op := range final(t, w, admin) {
			k, ok := written[*op.Value]
			require.True(t, ok && (k == "" || k == op.Key), "final %+v", op)
		}
	})

	t.Run("set", func(t *testing.T) {
		w := newWorkload(t, "set", workload.Options{ReadFraction: 0.05})
		setup(t, w, admin)
		ops := run(t, s, w, 4, 200)
		var added []int64
		reads := 0
		for _, op := range ops {
			require.Equal(t, results.OK, op.Type, "%+v", op)
			if op.F == results.FAdd {
				added = append(added, *op.Value)
				continue
			}
			// A read covers a window of at most 128 elements: nothing
			// outside it, and what it lacks inside it is named.
			reads++
			require.GreaterOrEqual(t, op.Lo, int64(1))
			require.LessOrEqual(t, op.Hi-op.Lo, int64(127))
			assert.Empty(t, op.Values, "no element outside the window")
			require.True(t, slices.IsSorted(op.Missing))
			for _, m := range op.Missing {
				require.True(t, m >= op.Lo && m <= op.Hi, "missing %d outside [%d, %d]", m, op.Lo, op.Hi)
			}
		}
		require.Positive(t, reads)
		slices.Sort(added)
		fin := final(t, w, admin)
		require.Len(t, fin, 1)
		// Every element handed out was added (all ok): none is missing.
		assert.Equal(t, int64(1), fin[0].Lo)
		assert.Equal(t, added[len(added)-1], fin[0].Hi)
		assert.Empty(t, fin[0].Missing)
		assert.Empty(t, fin[0].Values)
		assert.Len(t, added, int(fin[0].Hi))
	})

	t.Run("bank", func(t *testing.T) {
		w := newWorkload(t, "bank", workload.Options{Accounts: 4, InitialBalance: 10, MaxTransfer: 8})
		init := setup(t, w, admin)
		require.Len(t, init, 1)
		assert.Equal(t, results.FInit, init[0].F)
		assert.Equal(t, results.OK, init[0].Type)
		assert.Equal(t, results.HarnessProcess, init[0].Process)
		assert.Equal(t, []int64{10, 10, 10, 10}, init[0].Values)
		ops := run(t, s, w, 4, 150)
		bal := slices.Clone(init[0].Values)
		var ids []int64
		types := map[string]int{}
		for _, op := range ops {
			types[op.F+"/"+string(op.Type)]++
			require.NotEqual(t, results.Info, op.Type, "%+v", op)
			switch {
			case op.F == results.FRead && op.Type == results.OK:
				require.Len(t, op.Values, 4)
				var sum int64
				for _, v := range op.Values {
					require.GreaterOrEqual(t, v, int64(0))
					sum += v
				}
				require.Equal(t, int64(40), sum, "read %v", op.Values)
			case op.F == results.FTransfer && op.Type == results.OK:
				tr := op.Transfer
				bal[tr.From] -= tr.Amount
				bal[tr.To] += tr.Amount
				ids = append(ids, tr.ID)
			}
		}
		t.Logf("ops: %v", types)
		require.Positive(t, types["transfer/ok"])
		require.Positive(t, types["transfer/fail"], "with small balances and contention some transfers must fail")
		slices.Sort(ids)
		fin := final(t, w, admin)
		require.Len(t, fin, 1)
		assert.Equal(t, bal, fin[0].Values, "final balances = initial + ok transfers")
		assert.Equal(t, ids, fin[0].IDs, "log holds exactly the ok transfers")
	})
}

// TestIntegrationClassify provokes each kind of outcome on a real server.
func TestIntegrationClassify(t *testing.T) {
	s := startServer(t)
	admin := connect(t, s)
	reg := newWorkload(t, "register", workload.Options{Keys: 2})
	set := newWorkload(t, "set", workload.Options{})
	bank := newWorkload(t, "bank", workload.Options{Accounts: 2, InitialBalance: 10})
	for _, w := range []workload.Workload{reg, set, bank} {
		setup(t, w, admin)
	}
	exec := func(c *workload.Conn, sql string) {
		t.Helper()
		_, err := c.PgxConn().Exec(context.Background(), sql)
		require.NoError(t, err, sql)
	}
	write := func(v int64) results.Op {
		return results.Op{Type: results.Invoke, F: results.FWrite, Workload: "register", Key: "k0", Value: results.Int(v)}
	}
	read := results.Op{Type: results.Invoke, F: results.FRead, Workload: "register", Key: "k0"}
	readK0 := func() int64 {
		t.Helper()
		got := do(admin, reg, read, 5*time.Second)
		require.Equal(t, results.OK, got.Type, "%+v", got)
		return *got.Value
	}

	t.Run("read-only session refuses writes: fail 25006", func(t *testing.T) {
		c := connect(t, s)
		exec(c, "SET default_transaction_read_only = on")
		for _, op := range []struct {
			w  workload.Workload
			op results.Op
		}{
			{reg, write(1)},
			{set, results.Op{Type: results.Invoke, F: results.FAdd, Workload: "set", Value: results.Int(1)}},
			{bank, results.Op{Type: results.Invoke, F: results.FTransfer, Workload: "bank",
				Transfer: &results.Transfer{ID: 1, From: 0, To: 1, Amount: 1}}},
		} {
			got := do(c, op.w, op.op, 5*time.Second)
			assert.Equal(t, results.Fail, got.Type, "%s: %+v", op.w.Name(), got)
			assert.Contains(t, got.Error, "25006", op.w.Name())
			assert.False(t, c.IsClosed())
		}
		got := do(c, reg, read, 5*time.Second)
		assert.Equal(t, results.OK, got.Type, "reads still work: %+v", got)
	})

	t.Run("overdraft: fail, rolled back", func(t *testing.T) {
		got := do(admin, bank, results.Op{Type: results.Invoke, F: results.FTransfer, Workload: "bank",
			Transfer: &results.Transfer{ID: 77, From: 0, To: 1, Amount: 11}}, 5*time.Second)
		assert.Equal(t, results.Fail, got.Type, "%+v", got)
		assert.Contains(t, got.Error, "insufficient funds")
		fin := final(t, bank, admin)
		assert.Equal(t, []int64{10, 10}, fin[0].Values)
		assert.Empty(t, fin[0].IDs)
		// The exact balance is not an overdraft.
		got = do(admin, bank, results.Op{Type: results.Invoke, F: results.FTransfer, Workload: "bank",
			Transfer: &results.Transfer{ID: 78, From: 0, To: 1, Amount: 10}}, 5*time.Second)
		assert.Equal(t, results.OK, got.Type, "%+v", got)
		fin = final(t, bank, admin)
		assert.Equal(t, []int64{0, 20}, fin[0].Values)
		assert.Equal(t, []int64{78}, fin[0].IDs)
	})

	t.Run("unique violation: fail", func(t *testing.T) {
		add := results.Op{Type: results.Invoke, F: results.FAdd, Workload: "set", Value: results.Int(5)}
		assert.Equal(t, results.OK, do(admin, set, add, 5*time.Second).Type)
		got := do(admin, set, add, 5*time.Second)
		assert.Equal(t, results.Fail, got.Type)
		assert.Contains(t, got.Error, "23505")
	})

	// A write blocked on a lock times out: info either way. Without cancel
	// requests the server still holds the write and commits it once the
	// lock is gone (why a write's timeout must be info); with them, the
	// server cancels it.
	for _, tc := range []struct {
		cancel  bool
		applied bool
	}{{cancel: false, applied: true}, {cancel: true, applied: false}} {
		t.Run(fmt.Sprintf("timeout: info for a write, fail for a read; cancel=%v applied=%v", tc.cancel, tc.applied), func(t *testing.T) {
			// Warm up c: its statements are prepared before the lock, so
			// the timed-out write really executes (a Prepare blocked on
			// the lock is info too, but could never commit).
			c := connectWith(t, s, workload.ConnOptions{CancelOnTimeout: tc.cancel})
			require.Equal(t, results.OK, do(c, reg, write(4141), 5*time.Second).Type)
			require.Equal(t, results.OK, do(c, reg, read, 5*time.Second).Type)
			locker := connect(t, s)
			exec(locker, "BEGIN")
			exec(locker, "LOCK TABLE sc_register IN ACCESS EXCLUSIVE MODE")
			unlocked := false
			defer func() {
				if !unlocked {
					exec(locker, "ROLLBACK")
				}
			}()

			got := do(c, reg, write(4242), 300*time.Millisecond)
			assert.Equal(t, results.Info, got.Type, "%+v", got)
			assert.True(t, c.IsClosed(), "a timeout closes the connection")
			// The closed connection refuses at once: nothing was sent.
			got = do(c, reg, write(4343), time.Second)
			assert.Equal(t, results.Fail, got.Type, "%+v", got)

			r := connectWith(t, s, workload.ConnOptions{CancelOnTimeout: tc.cancel})
			got = do(r, reg, read, 300*time.Millisecond)
			assert.Equal(t, results.Fail, got.Type, "%+v", got)

			r = connect(t, s)
			got = do(r, set, results.Op{Type: results.Invoke, F: results.FRead, Workload: "set", Lo: 1, Hi: 128}, 300*time.Millisecond)
			assert.Equal(t, results.OK, got.Type, "the lock is on the register only: %+v", got)

			exec(locker, "ROLLBACK")
			unlocked = true
			if tc.applied {
				assert.Eventually(t, func() bool { return readK0() == 4242 }, 5*time.Second, 20*time.Millisecond)
			} else {
				time.Sleep(500 * time.Millisecond)
				assert.Equal(t, int64(4141), readK0())
			}
		})
	}

	t.Run("timeout in a slow statement (pg_sleep)", func(t *testing.T) {
		c := connect(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := c.PgxConn().Exec(ctx, "SELECT pg_sleep(5)")
		require.Error(t, err)
		assert.Equal(t, results.Info, workload.Classify(err, workload.PhaseWrite))
		assert.Equal(t, results.Info, workload.Classify(err, workload.PhaseCommit))
		assert.Equal(t, results.Fail, workload.Classify(err, workload.PhaseRead))
		assert.Equal(t, results.Fail, workload.Classify(err, workload.PhaseTx))
	})

	t.Run("warning during an ok write is kept", func(t *testing.T) {
		exec(admin, `CREATE FUNCTION sc_test_warn() RETURNS trigger LANGUAGE plpgsql AS
			$$BEGIN RAISE WARNING 'test warning %', NEW.val; RETURN NEW; END$$`)
		exec(admin, "CREATE TRIGGER sc_test_warn BEFORE UPDATE ON sc_register FOR EACH ROW EXECUTE FUNCTION sc_test_warn()")
		c := connect(t, s)
		got := do(c, reg, write(31), 5*time.Second)
		exec(admin, "DROP TRIGGER sc_test_warn ON sc_register")
		exec(admin, "DROP FUNCTION sc_test_warn()")
		assert.Equal(t, results.OK, got.Type, "%+v", got)
		assert.Equal(t, "test warning 31", got.Warning)
		exec(c, "DO $$BEGIN RAISE NOTICE 'only a notice'; END$$")
		got = do(c, reg, read, 5*time.Second)
		assert.Equal(t, results.OK, got.Type)
		assert.Empty(t, got.Warning, "warnings belong to the op that received them; notices are not kept")
	})

	t.Run("sync replication wait: timeout is info, a cancel request gives ok with the warning", func(t *testing.T) {
		exec(admin, "ALTER SYSTEM SET synchronous_standby_names = 'ghost'")
		exec(admin, "SELECT pg_reload_conf()")
		t.Cleanup(func() {
			exec(admin, "ALTER SYSTEM RESET synchronous_standby_names")
			exec(admin, "SELECT pg_reload_conf()")
		})
		time.Sleep(200 * time.Millisecond) // the reload is asynchronous
		waiters := func() (n int) {
			require.NoError(t, admin.PgxConn().QueryRow(context.Background(),
				"SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'").Scan(&n))
			return n
		}
		readKey := func(k string) int64 {
			got := do(admin, reg, results.Op{Type: results.Invoke, F: results.FRead, Workload: "register", Key: k}, 5*time.Second)
			require.Equal(t, results.OK, got.Type, "%+v", got)
			return *got.Value
		}
		write := func(k string, v int64) results.Op {
			return results.Op{Type: results.Invoke, F: results.FWrite, Workload: "register", Key: k, Value: results.Int(v)}
		}

		// Default: the timed-out commit keeps waiting, invisible.
		c := connect(t, s)
		got := do(c, reg, write("k0", 500), 300*time.Millisecond)
		assert.Equal(t, results.Info, got.Type, "%+v", got)
		time.Sleep(200 * time.Millisecond)
		assert.Equal(t, 1, waiters(), "the abandoned commit still waits")
		assert.NotEqual(t, int64(500), readKey("k0"))

		// With cancel requests: the wait is cancelled, the commit is local
		// only and visible on the primary; the client was not told: info.
		c = connectWith(t, s, workload.ConnOptions{CancelOnTimeout: true})
		got = do(c, reg, write("k1", 600), 300*time.Millisecond)
		assert.Equal(t, results.Info, got.Type, "%+v", got)
		assert.Eventually(t, func() bool { return readKey("k1") == 600 }, 5*time.Second, 20*time.Millisecond)

		// ConnectClient (the harness's workers) sends the cancel request and
		// waits for the answer: the server ends the wait, and the client is
		// told success with the warning although its context expired: ok.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cc, err := workload.ConnectClient(ctx, s.DSN)
		cancel()
		require.NoError(t, err)
		got = do(cc, reg, write("k1", 700), 300*time.Millisecond)
		_ = cc.Close(context.Background())
		assert.Equal(t, results.OK, got.Type, "%+v", got)
		assert.True(t, strings.HasPrefix(got.Warning, "canceling wait for synchronous replication"), got.Warning)
		assert.Equal(t, int64(700), readKey("k1"))

		// Within (how the harness bounds an operation) does the same
		// without a context that expires: the cancel request ends the wait,
		// ok with the warning; and a statement the operation would send
		// after its timeout is not sent at all (fail, nothing written).
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		cc, err = workload.ConnectClient(ctx, s.DSN)
		cancel()
		require.NoError(t, err)
		defer cc.Close(context.Background())
		got = cc.Within(context.Background(), 300*time.Millisecond, func(ctx context.Context) results.Op {
			return reg.Do(ctx, cc, write("k1", 800))
		})
		assert.Equal(t, results.OK, got.Type, "%+v", got)
		assert.True(t, strings.HasPrefix(got.Warning, "canceling wait for synchronous replication"), got.Warning)
		assert.Equal(t, int64(800), readKey("k1"))
		got = cc.Within(context.Background(), 100*time.Millisecond, func(ctx context.Context) results.Op {
			time.Sleep(300 * time.Millisecond) // the client is slow: the timeout passes before it sends
			return reg.Do(ctx, cc, write("k1", 801))
		})
		assert.Equal(t, results.Fail, got.Type, "not sent: certainly did not happen: %+v", got)
		assert.Equal(t, int64(800), readKey("k1"), "nothing written")
		got = cc.Within(context.Background(), 5*time.Second, func(ctx context.Context) results.Op {
			return reg.Do(ctx, cc, results.Op{Type: results.Invoke, F: results.FRead, Workload: "register", Key: "k1"})
		})
		assert.Equal(t, results.OK, got.Type, "the next operation runs as usual: %+v", got)

		// Someone else's cancel request (the nemesis's pg_cancel_backend):
		// the client is told success, with the warning: ok.
		c = connect(t, s)
		done := make(chan results.Op, 1)
		go func() { done <- do(c, reg, write("k1", 601), 20*time.Second) }()
		require.Eventually(t, func() bool {
			_, err := admin.PgxConn().Exec(context.Background(),
				`SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE wait_event = 'SyncRep'`)
			require.NoError(t, err)
			return len(done) == 1
		}, 10*time.Second, 50*time.Millisecond)
		got = <-done
		assert.Equal(t, results.OK, got.Type, "%+v", got)
		assert.True(t, strings.HasPrefix(got.Warning, "canceling wait for synchronous replication"), got.Warning)
		assert.Contains(t, got.Warning, "committed locally")
		assert.Equal(t, int64(601), readKey("k1"))
		assert.Equal(t, int64(500), readKey("k0"), "the abandoned commit, released too, is now visible")
		assert.Zero(t, waiters())
	})
}

// TestIntegrationPgbenchScript checks that the pgbench script runs the
// register's write on the same table.
func TestIntegrationPgbenchScript(t *testing.T) {
	s := startServer(t)
	if _, err := os.Stat(filepath.Join(s.BinDir, "pgbench")); err != nil {
		t.Skip("no pgbench beside initdb")
	}
	c := connect(t, s)
	w := newWorkload(t, "register", workload.Options{Keys: 3, WritesOnly: true})
	setup(t, w, c)
	script := filepath.Join(s.Dir, "write.sql")
	require.NoError(t, os.WriteFile(script, []byte(workload.PgbenchWriteScript(3)), 0o644))
	out, err := s.Pgbench(context.Background(), "-n", "-M", "prepared", "-f", script, "-t", "200", "postgres")
	require.NoError(t, err)
	assert.Contains(t, out, "number of transactions actually processed: 200/200")
	changed := 0
	for _, op := range final(t, w, c) {
		if *op.Value != 0 {
			changed++
		}
	}
	assert.Equal(t, 3, changed, "200 random writes reach all 3 keys")
}

// A connection meant for the primary refuses a server that takes no
// writes (a demoted primary restarted in recovery answers the same way);
// the same server takes an ordinary connection, and a writable one takes
// both.
func TestIntegrationPrimaryDSN(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ro, err := pgtest.Start(ctx, map[string]string{"default_transaction_read_only": "on"})
	if errors.Is(err, pgtest.ErrUnavailable) {
		t.Skip(err.Error())
	}
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, ro.Stop()) })
	rw := startServer(t)

	_, err = workload.ConnectClient(ctx, workload.PrimaryDSN(ro.DSN))
	require.Error(t, err, "a read-only server is not the primary")
	assert.Contains(t, err.Error(), "read only")
	for i, dsn := range []string{ro.DSN, rw.DSN, workload.PrimaryDSN(rw.DSN)} {
		c, err := workload.ConnectClient(ctx, dsn)
		require.NoError(t, err, "connection %d", i)
		require.NoError(t, c.Close(ctx))
	}
}
