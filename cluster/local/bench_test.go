package local

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
)

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkUp measures bringing a three-node cluster up (both standbys in
// quorum) and tearing it down. Targets here: up at most 1.5 s median,
// teardown under 1 s.
func BenchmarkUp(b *testing.B) {
	needLocal(b)
	ctx := context.Background()
	var ups, downs []time.Duration
	for i := 0; i < b.N; i++ {
		dir := tempDir(b)
		t0 := time.Now()
		c, err := Up(ctx, Options{Dir: dir, Subnet: AutoSubnet})
		require.NoError(b, err)
		ups = append(ups, time.Since(t0))
		t1 := time.Now()
		require.NoError(b, c.Close(ctx))
		downs = append(downs, time.Since(t1))
	}
	b.ReportMetric(median(ups).Seconds(), "up-median-s")
	b.ReportMetric(median(downs).Seconds(), "down-median-s")
}

// BenchmarkFailover measures, with a writer running, the time from the
// SIGKILL of the primary to the first write acknowledged by the promoted
// standby (kill, promote, sync list, re-point the other standby: with RPO
// kept at 0 the first commit waits for it), and the full kill-to-healthy time
// (rewind and rejoin the old primary, ANY 2 restored). Target
// here: kill to first write under 0.5 s.
func BenchmarkFailover(b *testing.B) {
	needLocal(b)
	ctx := context.Background()
	var toWrite, toHealthy []time.Duration
	for i := 0; i < b.N; i++ {
		c := upCluster(b, cluster.Spec{})
		require.NoError(b, cluster.Exec(ctx, c, "n1", "CREATE TABLE t (v serial primary key)",
			"GRANT ALL ON t TO "+UserName, "GRANT ALL ON SEQUENCE t_v_seq TO "+UserName))
		// Load on the primary while it dies, as in a run.
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			conn, err := pgx.Connect(ctx, c.ConnString("n1", false))
			if err != nil {
				return
			}
			defer conn.Close(ctx)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := conn.Exec(ctx, "INSERT INTO t DEFAULT VALUES"); err != nil {
					return
				}
			}
		}()
		time.Sleep(300 * time.Millisecond)
		t0 := time.Now()
		require.NoError(b, c.Kill(ctx, "n1"))
		close(stop)
		res, err := cluster.Promote(ctx, c, cluster.PromoteOptions{Old: "n1"})
		require.NoError(b, err)
		// RPO = 0 after the failover: the promoted node's commits wait for
		// the remaining standby, so it must follow before the first write.
		_, _, err = cluster.Repoint(ctx, c, "n1", res.New, res.SwitchLSN, res.Followers)
		require.NoError(b, err)
		conn, err := pgx.Connect(ctx, c.ConnString(res.New, false))
		require.NoError(b, err)
		_, err = conn.Exec(ctx, "INSERT INTO t DEFAULT VALUES")
		require.NoError(b, err)
		toWrite = append(toWrite, time.Since(t0))
		conn.Close(ctx)
		<-done
		_, err = cluster.RejoinOld(ctx, c, "n1", res.New)
		require.NoError(b, err)
		require.NoError(b, cluster.WaitStreaming(ctx, c, res.New, without(c.Nodes(), res.New), true))
		toHealthy = append(toHealthy, time.Since(t0))
	}
	b.ReportMetric(float64(median(toWrite).Milliseconds()), "kill-to-write-ms")
	b.ReportMetric(median(toHealthy).Seconds(), "kill-to-healthy-s")
}
