package workload_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
)

// TestIntegrationFastPath checks the fast path (ConnectClient, Within) on
// a real server where it differs from pgx: it shares the connection with
// pgx, a server's ERROR keeps the connection, a warning is kept, a
// cancelled statement is info and keeps the connection, and a terminated
// backend drops it.
func TestIntegrationFastPath(t *testing.T) {
	s := startServer(t)
	admin := connect(t, s)
	reg := newWorkload(t, "register", workload.Options{Keys: 2})
	set := newWorkload(t, "set", workload.Options{})
	setup(t, reg, admin)
	setup(t, set, admin)
	exec := func(c *workload.Conn, sql string) {
		t.Helper()
		_, err := c.PgxConn().Exec(context.Background(), sql)
		require.NoError(t, err, sql)
	}
	write := func(k string, v int64) results.Op {
		return results.Op{Type: results.Invoke, F: results.FWrite, Workload: "register", Key: k, Value: results.Int(v)}
	}
	read := func(k string) results.Op {
		return results.Op{Type: results.Invoke, F: results.FRead, Workload: "register", Key: k}
	}
	add := func(v int64) results.Op {
		return results.Op{Type: results.Invoke, F: results.FAdd, Workload: "set", Value: results.Int(v)}
	}
	readK := func(k string) int64 {
		t.Helper()
		got := do(admin, reg, read(k), 5*time.Second)
		require.Equal(t, results.OK, got.Type, "%+v", got)
		return *got.Value
	}

	t.Run("shares the connection with pgx", func(t *testing.T) {
		c := connectClient(t, s)
		require.Equal(t, results.OK, within(c, reg, write("k0", 11), 5*time.Second).Type)
		got := within(c, set, results.Op{Type: results.Invoke, F: results.FRead, Workload: "set", Lo: 1, Hi: 10}, 5*time.Second)
		require.Equal(t, results.OK, got.Type, "pgx after the fast path: %+v", got)
		got = within(c, reg, read("k0"), 5*time.Second)
		require.Equal(t, results.OK, got.Type, "%+v", got)
		assert.Equal(t, int64(11), *got.Value)
		var names []string
		rows, err := c.PgxConn().Query(context.Background(), "SELECT name FROM pg_prepared_statements WHERE name LIKE 'sc_register_%' ORDER BY name")
		require.NoError(t, err)
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			names = append(names, n)
		}
		require.NoError(t, rows.Err())
		assert.Equal(t, []string{"sc_register_read", "sc_register_write"}, names, "the register's statements went down the fast path")
	})

	t.Run("server errors: fail, the connection stays", func(t *testing.T) {
		c := connectClient(t, s)
		require.Equal(t, results.OK, within(c, set, add(7), 5*time.Second).Type)
		got := within(c, set, add(7), 5*time.Second)
		assert.Equal(t, results.Fail, got.Type, "%+v", got)
		assert.Contains(t, got.Error, "23505")
		got = within(c, reg, results.Op{Type: results.Invoke, F: results.FCAS, Workload: "register", Key: "k1",
			Expect: results.Int(-5), Value: results.Int(12)}, 5*time.Second)
		assert.Equal(t, results.Fail, got.Type, "%+v", got)
		assert.Contains(t, got.Error, "cas")
		exec(c, "SET default_transaction_read_only = on")
		got = within(c, reg, write("k1", 13), 5*time.Second)
		assert.Equal(t, results.Fail, got.Type, "%+v", got)
		assert.Contains(t, got.Error, "25006")
		assert.False(t, c.IsClosed())
		got = within(c, reg, read("k1"), 5*time.Second)
		assert.Equal(t, results.OK, got.Type, "%+v", got)
		assert.Equal(t, int64(0), *got.Value, "neither the cas nor the write changed k1")
	})

	t.Run("a warning during an ok write is kept", func(t *testing.T) {
		exec(admin, `CREATE FUNCTION sc_fast_warn() RETURNS trigger LANGUAGE plpgsql AS
			$$BEGIN RAISE WARNING 'fast warning %', NEW.val; RETURN NEW; END$$`)
		exec(admin, "CREATE TRIGGER sc_fast_warn BEFORE UPDATE ON sc_register FOR EACH ROW EXECUTE FUNCTION sc_fast_warn()")
		c := connectClient(t, s)
		got := within(c, reg, write("k1", 31), 5*time.Second)
		exec(admin, "DROP TRIGGER sc_fast_warn ON sc_register")
		exec(admin, "DROP FUNCTION sc_fast_warn()")
		assert.Equal(t, results.OK, got.Type, "%+v", got)
		assert.Equal(t, "fast warning 31", got.Warning)
		got = within(c, reg, read("k1"), 5*time.Second)
		assert.Equal(t, results.OK, got.Type)
		assert.Empty(t, got.Warning, "warnings belong to the op that received them")
	})

	t.Run("a timeout on a lock: the cancel request ends it, info for a write, fail for a read", func(t *testing.T) {
		c := connectClient(t, s)
		require.Equal(t, results.OK, within(c, reg, write("k0", 41), 5*time.Second).Type)
		require.Equal(t, results.OK, within(c, reg, read("k0"), 5*time.Second).Type)
		locker := connect(t, s)
		exec(locker, "BEGIN")
		exec(locker, "LOCK TABLE sc_register IN ACCESS EXCLUSIVE MODE")
		got := within(c, reg, write("k0", 42), 300*time.Millisecond)
		assert.Equal(t, results.Info, got.Type, "%+v", got)
		assert.Contains(t, got.Error, "57014", "the server cancelled it")
		assert.False(t, c.IsClosed(), "the server answered the cancel: the connection is in step")
		got = within(c, reg, read("k0"), 300*time.Millisecond)
		assert.Equal(t, results.Fail, got.Type, "%+v", got)
		exec(locker, "ROLLBACK")
		time.Sleep(200 * time.Millisecond) // a cancel request arriving late must hit nothing
		got = within(c, reg, read("k0"), 5*time.Second)
		require.Equal(t, results.OK, got.Type, "the same connection goes on: %+v", got)
		assert.Equal(t, int64(41), *got.Value, "the cancelled write did not happen")
	})

	t.Run("a terminated backend: info, and the connection is dropped", func(t *testing.T) {
		c := connectClient(t, s)
		require.Equal(t, results.OK, within(c, reg, write("k0", 51), 5*time.Second).Type)
		var pid int
		require.NoError(t, c.PgxConn().QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid))
		locker := connect(t, s)
		exec(locker, "BEGIN")
		exec(locker, "LOCK TABLE sc_register IN ACCESS EXCLUSIVE MODE")
		done := make(chan results.Op, 1)
		go func() { done <- within(c, reg, write("k0", 52), 10*time.Second) }()
		require.Eventually(t, func() bool {
			var n int
			require.NoError(t, admin.PgxConn().QueryRow(context.Background(),
				"SELECT count(*) FROM pg_locks WHERE pid = $1 AND NOT granted", pid).Scan(&n))
			return n > 0
		}, 5*time.Second, 20*time.Millisecond, "the write waits for the lock")
		_, err := admin.PgxConn().Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid)
		require.NoError(t, err)
		got := <-done
		exec(locker, "ROLLBACK")
		assert.Equal(t, results.Info, got.Type, "%+v", got)
		assert.Contains(t, got.Error, "57P01")
		assert.True(t, c.IsClosed())
		got = within(c, reg, write("k0", 53), time.Second)
		assert.Equal(t, results.Fail, got.Type, "not sent on a dropped connection: %+v", got)
		assert.Equal(t, int64(51), readK("k0"))
	})
}
