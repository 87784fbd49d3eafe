package nemesis

import (
	"math/rand/v2"
	"time"
)

// Plan lays out the faults of a run: one fault per interval, the first
// after a quiet fifth of an interval, each held for about half an interval
// and healed before the next. The kind and a target pick come from the
// seed: the same seed, faults, interval and time limit give the same plan.
// Nothing strikes in the last 30 % of an interval before the time limit,
// so that every window closes inside the run.
func Plan(seed int64, faults []Fault, interval, timeLimit time.Duration) []Step {
	if len(faults) == 0 || interval <= 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6e656d65736973)) // "nemesis"
	var out []Step
	for k := 0; ; k++ {
		base := time.Duration(k) * interval
		jitter := time.Duration(rng.Int64N(int64(interval)/10 + 1))
		at := base + interval/5 + jitter
		hold := interval/2 - jitter/2
		if at+hold+interval/10 > timeLimit {
			break
		}
		out = append(out, Step{At: at, Fault: faults[rng.IntN(len(faults))], Hold: hold, Pick: rng.Uint32()})
	}
	return out
}
