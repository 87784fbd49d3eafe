package elle

import (
	"context"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/strongcheck/strongcheck/internal/histgen"
)

// The speed target of issue 15: a million transactions of up to ten
// micro-operations checked within 30 s and 3 GiB on two cores.
const (
	speedTxns   = 1_000_000
	speedTime   = 30 * time.Second
	speedMemory = 3 << 30
)

// speedOptions is the budget the speed test gives Check: past it the
// verdict is unknown, so a pass is a check that finished within it.
var speedOptions = Options{Model: "serializable", Timeout: speedTime, MemoryBudget: speedMemory}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs f and reports its wall time, CPU time and peak heap in use
// (sampled every 10 ms).
func measure(f func()) (wall, cpu time.Duration, peak uint64) {
	runtime.GC()
	var p atomic.Uint64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.Load() {
				p.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	start, c0 := time.Now(), cpuTime()
	f()
	wall, cpu = time.Since(start), cpuTime()-c0
	close(stop)
	<-done
	return wall, cpu, p.Load()
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestSpeed1M checks two histories of a million transactions of one to ten
// micro-operations (ten clients, 5 % info, 2 % failed, final reads on three
// nodes): one strict serializable, and one where 2 % of the read-only
// transactions read a snapshot up to 20 ms old, as a lagging standby serves
// (serializable, not strict: a G-single-realtime cycle for most of them,
// and the real-time graph one big component). Both within the target,
// measured with the heap of the history included.
func TestSpeed1M(t *testing.T) {
	if testing.Short() {
		t.Skip("a million transactions: not under -short")
	}
	if raceEnabled {
		t.Skip("timings mean nothing under -race")
	}
	for _, c := range []struct {
		name  string
		stale float64
		want  Validity
	}{{"strict serializable", 0, Valid}, {"stale reads", 0.02, Valid}} {
		base := heapInUse()
		ops := histgen.ListAppend(1, speedTxns, histgen.TxnOptions{MaxMops: 10, Final: true, Stale: c.stale})
		hist := heapInUse() - min(heapInUse(), base)
		var r *Result
		wall, cpu, peak := measure(func() { r = Check(context.Background(), ops, speedOptions) })
		t.Logf("%s: %d history entries (%.0f MiB): wall %v, CPU %v, peak heap %.0f MiB (history included)",
			c.name, len(ops), float64(hist)/(1<<20), wall.Round(time.Millisecond), cpu.Round(time.Millisecond), float64(peak)/(1<<20))
		t.Logf("  %s", r.Summary)
		t.Logf("  edges: ww %d, wr %d, rw %d, realtime %d, process %d", r.Edges.WW, r.Edges.WR, r.Edges.RW, r.Edges.Realtime, r.Edges.Process)
		require.Equal(t, c.want, r.Verdict, r.Summary)
		assert.Less(t, wall, speedTime)
		assert.Less(t, peak, uint64(speedMemory))
		if c.stale > 0 {
			assert.Contains(t, kindsOf(r), GSingleRealtime)
			assert.Contains(t, ruledOut(r), "strict-serializable")
		}
		ops = nil
		runtime.GC()
	}
}

// A budget too small for the history ends unknown, never valid.
func TestBudgetEndsUnknown(t *testing.T) {
	ops := histgen.ListAppend(3, 20_000, histgen.TxnOptions{Final: true})
	for name, o := range map[string]Options{
		"time":   {Timeout: time.Nanosecond},
		"memory": {MemoryBudget: 1},
	} {
		r := check(t, ops, o)
		assert.Equal(t, Unknown, r.Verdict, name)
		assert.NotEmpty(t, r.Error, name)
		assert.NotEmpty(t, r.Undecided, name)
		assert.Empty(t, r.Satisfies, name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Check(ctx, ops, Options{})
	assert.Equal(t, Unknown, r.Verdict)
	assert.Contains(t, r.Error, "canceled")
	assert.Equal(t, Valid, check(t, ops, Options{Timeout: time.Minute, MemoryBudget: 64 << 30}).Verdict)
}

// BenchmarkCheck1M is Check on the strict serializable million.
func BenchmarkCheck1M(b *testing.B) {
	ops := histgen.ListAppend(1, speedTxns, histgen.TxnOptions{MaxMops: 10, Final: true})
	b.ResetTimer()
	for b.Loop() {
		if r := Check(context.Background(), ops, speedOptions); r.Verdict != Valid {
			b.Fatal(r.Summary)
		}
	}
}
