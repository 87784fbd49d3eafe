package workload_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/results"
	"github.com/strongcheck/strongcheck/workload"
	"github.com/strongcheck/strongcheck/workload/internal/pgtest"
)

// TestIntegrationKillDuringCommit kills the server while a commit waits
// for a synchronous standby that never answers (the commit record is
// written: after a failover the transaction can be there). Whatever pgx
// reports for the lost connection ("conn closed" in pgx 5.12, which it
// calls safe to retry), the outcome must be info, for an explicit COMMIT
// and for an autocommit write alike.
func TestIntegrationKillDuringCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: -short")
	}
	for _, phase := range []workload.Phase{workload.PhaseCommit, workload.PhaseWrite} {
		t.Run(phase.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := pgtest.Start(ctx, map[string]string{"synchronous_standby_names": "nobody"})
			if errors.Is(err, pgtest.ErrUnavailable) {
				t.Skip(err.Error())
			}
			require.NoError(t, err)
			defer s.Stop()
			c, err := workload.ConnectClient(ctx, s.DSN)
			require.NoError(t, err)
			defer c.Close(context.Background())
			pg := c.PgxConn()
			_, err = pg.Exec(ctx, "SET synchronous_commit = local")
			require.NoError(t, err)
			_, err = pg.Exec(ctx, "CREATE TABLE x (k int PRIMARY KEY)")
			require.NoError(t, err)
			_, err = pg.Exec(ctx, "SET synchronous_commit = on") // from here on, commits wait for "nobody"
			require.NoError(t, err)
			go func() {
				time.Sleep(300 * time.Millisecond)
				assert.NoError(t, s.Kill())
			}()
			octx, ocancel := context.WithTimeout(ctx, 10*time.Second)
			defer ocancel()
			if phase == workload.PhaseCommit {
				tx, err := pg.BeginTx(octx, pgx.TxOptions{IsoLevel: pgx.Serializable})
				require.NoError(t, err)
				_, err = tx.Exec(octx, "INSERT INTO x VALUES (1)")
				require.NoError(t, err)
				err = tx.Commit(octx)
				require.Error(t, err)
				t.Logf("commit: %v", err)
				assert.Equal(t, results.Info, workload.Classify(err, phase))
				return
			}
			_, err = pg.Exec(octx, "INSERT INTO x VALUES ($1)", 1)
			require.Error(t, err)
			t.Logf("autocommit insert: %v", err)
			assert.Equal(t, results.Info, workload.Classify(err, phase))
		})
	}
}
