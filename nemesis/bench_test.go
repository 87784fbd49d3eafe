package nemesis

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/results"
)

// BenchmarkFailoverVerified measures a kill of the primary as a run makes
// it, every verification included: the nemesis's kill-primary window with
// auto failover (kill, verified down; promotion of the standby known to
// hold every acknowledged commit; the clients switched; the new primary
// verified; the other standby re-pointed; the old primary rewound and
// verified streaming), against a local cluster with a writer that follows
// the primary the nemesis names, as the run's clients do. It reports the
// median time from the kill step's start to the clients' switch and to the
// writer's first acknowledged write on the new primary. Target (issue 22):
// kill to first acknowledged write at most 200 ms median.
func BenchmarkFailoverVerified(b *testing.B) {
	c := upLocal(b)
	ctx := context.Background()
	require.NoError(b, cluster.Exec(ctx, c, "n1", "CREATE TABLE t (v serial primary key)",
		"GRANT ALL ON t TO "+local.UserName, "GRANT ALL ON SEQUENCE t_v_seq TO "+local.UserName))
	rec := &memRecorder{start: time.Now()}
	topo := &fixedTopo{p: "n1"}
	n := New(c, Config{Interval: time.Second, Failover: Policy{Mode: FailoverAuto}, WaitHealthy: 20 * time.Second}, rec, topo)
	w := &ackWriter{c: c, topo: topo, rec: rec}
	stop := w.start(ctx)
	defer stop()
	var toSwitch, toWrite []time.Duration
	for i := 0; i < b.N; i++ {
		old := topo.Primary()
		healthy, err := n.waitHealthy(ctx, n.open(KillPrimary), "before")
		require.NoError(b, err)
		require.True(b, healthy)
		time.Sleep(300 * time.Millisecond) // writes under way, as in a run
		from := len(rec.ops)
		require.NoError(b, n.killPrimary(ctx, n.open(KillPrimary), Step{Hold: 300 * time.Millisecond}, old, others(c.Nodes(), old), nil, nil))
		require.Empty(b, n.Errors(), "every step verified")
		kill, sw := stepTime(rec, from, KillPrimary, results.Invoke), stepTime(rec, from, "switch-primary", results.OK)
		ack := w.firstAckAfter(sw, topo.Primary())
		require.Positive(b, kill)
		require.Positive(b, sw)
		require.Positive(b, ack, "a write was acknowledged on the new primary")
		toSwitch = append(toSwitch, time.Duration(sw-kill))
		toWrite = append(toWrite, time.Duration(ack-kill))
		b.Logf("failover %d: %s -> %s: switch after %v, first acknowledged write after %v; failover step %v",
			i+1, old, topo.Primary(), time.Duration(sw-kill), time.Duration(ack-kill), failoverDurations(rec, from))
	}
	b.ReportMetric(float64(median(toSwitch).Microseconds())/1000, "kill-to-switch-ms")
	b.ReportMetric(float64(median(toWrite).Microseconds())/1000, "kill-to-write-ms")
}

func others(nodes []string, except string) []string {
	return slices.DeleteFunc(slices.Clone(nodes), func(n string) bool { return n == except })
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// stepTime is the time of the first op from index from on with f and typ.
func stepTime(rec *memRecorder, from int, f string, typ results.Type) int64 {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, op := range rec.ops[from:] {
		if op.F == f && op.Type == typ {
			return op.Time
		}
	}
	return 0
}

// failoverDurations are the durations the failover step recorded.
func failoverDurations(rec *memRecorder, from int) map[string]time.Duration {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := map[string]time.Duration{}
	for _, op := range rec.ops[from:] {
		if op.F == "failover" && op.Type == results.OK && op.Fault != nil {
			for k, v := range op.Fault.Durations {
				out[k] = time.Duration(v).Round(time.Millisecond)
			}
		}
	}
	return out
}

// ackWriter inserts rows in a loop into the primary the topology names,
// as one client of a run does, and keeps the time (on rec's clock) and
// node of every acknowledged write.
type ackWriter struct {
	c    cluster.Cluster
	topo Topology
	rec  *memRecorder
	mu   sync.Mutex
	acks []ack
}

type ack struct {
	t    int64
	node string
}

func (w *ackWriter) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conn *pgx.Conn
		node := ""
		for ctx.Err() == nil {
			if p := w.topo.Primary(); conn == nil || p != node {
				if conn != nil {
					conn.Close(context.Background())
				}
				cctx, ccancel := context.WithTimeout(ctx, time.Second)
				var err error
				conn, err = pgx.Connect(cctx, w.c.ConnString(p, false))
				ccancel()
				if err != nil {
					conn = nil
					time.Sleep(time.Millisecond)
					continue
				}
				node = p
			}
			octx, ocancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := conn.Exec(octx, "INSERT INTO t DEFAULT VALUES")
			ocancel()
			if err != nil {
				conn.Close(context.Background())
				conn = nil
				continue
			}
			w.mu.Lock()
			w.acks = append(w.acks, ack{t: w.rec.Now(), node: node})
			w.mu.Unlock()
		}
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	return func() { cancel(); <-done }
}

// firstAckAfter is the time of the first write acknowledged by node at or
// after t (0: none).
func (w *ackWriter) firstAckAfter(t int64, node string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.acks {
		if a.t >= t && a.node == node {
			return a.t
		}
	}
	return 0
}
