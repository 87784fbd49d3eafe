package elle

import (
	"context"
	"fmt"
	"runtime/metrics"
	"time"
)

// budget stops a check that runs out of time or memory or whose context is
// done; the check then ends unknown, never valid.
type budget struct {
	ctx      context.Context
	deadline time.Time // zero: none
	memory   uint64    // live heap bytes; 0: none
	reason   string    // why it stopped; "" while it has not
	sample   []metrics.Sample
}

func newBudget(ctx context.Context, timeout time.Duration, memory uint64) *budget {
	b := &budget{ctx: ctx, memory: memory, sample: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
	if timeout > 0 {
		b.deadline = time.Now().Add(timeout)
	}
	if d, ok := ctx.Deadline(); ok && (b.deadline.IsZero() || d.Before(b.deadline)) {
		b.deadline = d
	}
	return b
}

// exceeded reports whether the check must stop, and remembers why.
func (b *budget) exceeded() bool {
	if b.reason != "" {
		return true
	}
	switch {
	case b.ctx.Err() != nil:
		b.reason = fmt.Sprintf("stopped: %v", b.ctx.Err())
	case !b.deadline.IsZero() && time.Now().After(b.deadline):
		b.reason = "the time limit ran out"
	case b.memory > 0 && b.heapLive() > b.memory:
		b.reason = fmt.Sprintf("the memory budget (%d MiB) ran out", b.memory>>20)
	}
	return b.reason != ""
}

func (b *budget) heapLive() uint64 {
	metrics.Read(b.sample)
	if b.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return b.sample[0].Value.Uint64()
}
