package checker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// Nemesis fault kinds the availability check knows by name.
const (
	kindKillPrimary = "kill-primary"
	kindFailover    = "failover"
)

// CheckAvailability counts client outcomes and ok latencies inside each
// fault window (by invoke time) and outside all of them, the longest time
// in each window without an acknowledged write, and the RTO of every kill
// of the primary. It is informational: valid unless there is no client
// operation at all (unknown).
func CheckAvailability(ctx context.Context, ops []results.Op) Check {
	return checkAvailability(ctx, index(ops))
}

// outcomeAcc accumulates Outcomes in memory bounded whatever the run's
// length: latencies are kept exactly up to exactSamples of them, then in
// logarithmic buckets 1 % wide (quantiles within 1 %; the maximum exact).
type outcomeAcc struct {
	o      Outcomes
	lat    []int64
	bucket map[int32]int64
	n      int64
}

// exactSamples is how many latencies an outcomeAcc keeps as they are.
const exactSamples = 1 << 14

// bucketBase is the ratio of one latency bucket's bounds.
var logBucketBase = math.Log(1.01)

func bucketOf(ns int64) int32 {
	if ns <= 1 {
		return 0
	}
	return int32(math.Log(float64(ns)) / logBucketBase)
}

// bucketValue is a bucket's representative latency: its geometric middle.
func bucketValue(b int32) int64 { return int64(math.Exp((float64(b) + 0.5) * logBucketBase)) }

func (a *outcomeAcc) add(t uint8, lat int64) {
	switch t {
	case tOK:
		a.o.OK++
		a.n++
		a.o.Max = max(a.o.Max, lat)
		if a.bucket == nil && len(a.lat) < exactSamples {
			a.lat = append(a.lat, lat)
			return
		}
		if a.bucket == nil {
			a.bucket = map[int32]int64{}
			for _, l := range a.lat {
				a.bucket[bucketOf(l)]++
			}
			a.lat = nil
		}
		a.bucket[bucketOf(lat)]++
	case tFail:
		a.o.Fail++
	default:
		a.o.Info++
	}
}

func (a *outcomeAcc) done() Outcomes {
	if a.bucket != nil {
		keys := make([]int32, 0, len(a.bucket))
		for b := range a.bucket {
			keys = append(keys, b)
		}
		slices.Sort(keys)
		q := func(p float64) int64 {
			rank, seen := int64(p*float64(a.n)), int64(0)
			for _, b := range keys {
				if seen += a.bucket[b]; seen > rank {
					return min(bucketValue(b), a.o.Max)
				}
			}
			return a.o.Max
		}
		a.o.P50, a.o.P95, a.o.P99 = q(0.50), q(0.95), q(0.99)
		return a.o
	}
	if n := len(a.lat); n > 0 {
		// Selection instead of a sort: linear in the number of operations.
		q := func(p float64) int64 { return nth(a.lat, min(n-1, int(p*float64(n)))) }
		a.o.P50, a.o.P95, a.o.P99 = q(0.50), q(0.95), q(0.99)
	}
	return a.o
}

// nth returns the k-th smallest element of s (reordering s), in expected
// linear time.
func nth(s []int64, k int) int64 {
	lo, hi := 0, len(s)-1
	for lo < hi {
		// Median of three as the pivot, then a three-way partition.
		mid := lo + (hi-lo)/2
		a, b, c := s[lo], s[mid], s[hi]
		pivot := max(min(a, b), min(max(a, b), c))
		lt, i, gt := lo, lo, hi
		for i <= gt {
			switch {
			case s[i] < pivot:
				s[lt], s[i] = s[i], s[lt]
				lt++
				i++
			case s[i] > pivot:
				s[i], s[gt] = s[gt], s[i]
				gt--
			default:
				i++
			}
		}
		switch {
		case k < lt:
			hi = lt - 1
		case k > gt:
			lo = gt + 1
		default:
			return pivot
		}
	}
	return s[k]
}

func checkAvailability(ctx context.Context, h *history) Check {
	start := time.Now()
	chk := Check{Name: NameAvailability}
	res := &AvailabilityResult{}
	chk.Availability = res

	stops := make([]int64, len(h.windows))
	for i, w := range h.windows {
		stops[i] = w.stop
		if stops[i] < 0 {
			stops[i] = h.end
		}
	}
	var all, outside outcomeAcc
	inWin := make([]outcomeAcc, len(h.windows))
	for _, c := range h.clients {
		t := c.typ
		var lat int64
		if c.comp >= 0 {
			lat = c.compT - c.invT
		}
		all.add(t, lat)
		in := false
		for w := h.latestWindow(c.invT); w >= 0; w-- {
			if c.invT <= stops[w] {
				inWin[w].add(t, lat)
				in = true
			}
		}
		if !in {
			outside.add(t, lat)
		}
	}
	if ctx.Err() != nil {
		chk.Verdict, chk.Error = Unknown, fmt.Sprintf("stopped: %v", ctx.Err())
		chk.Summary = "unknown: " + chk.Error
		return chk
	}
	res.All, res.Outside = all.done(), outside.done()

	wcomp, winv := h.wcomp, h.winv
	for i, w := range h.windows {
		win := Window{ID: w.id, Kind: w.kind, Targets: w.targets, StartNS: w.start, StopNS: w.stop, Ops: inWin[i].done()}
		// Longest stretch of [start, stop] without an acknowledged write.
		prev := w.start
		j := sort.Search(len(wcomp), func(k int) bool { return wcomp[k] >= w.start })
		for ; j < len(wcomp) && wcomp[j] <= stops[i]; j++ {
			win.WriteGapNS = max(win.WriteGapNS, wcomp[j]-prev)
			prev = wcomp[j]
		}
		win.WriteGapNS = max(win.WriteGapNS, stops[i]-prev)
		res.Windows = append(res.Windows, win)
	}
	res.Failovers = h.rtos(wcomp, winv)

	if len(h.clients) == 0 {
		chk.Verdict = Unknown
		chk.Error = "no client operation in the history"
		chk.Summary = "unknown: " + chk.Error
	} else {
		chk.Verdict = Valid
		chk.Summary = fmt.Sprintf("%d ok, %d fail, %d info; ok latency p50 %s, p99 %s; %d fault windows",
			res.All.OK, res.All.Fail, res.All.Info, fmtNS(res.All.P50), fmtNS(res.All.P99), len(res.Windows))
		for _, r := range res.Failovers {
			chk.Summary += fmt.Sprintf("; kill of %s: ", r.Old)
			if r.PromotedNS >= 0 {
				chk.Summary += fmt.Sprintf("%s promoted after %s", r.New, fmtNS(r.ToPromotionNS))
			} else {
				chk.Summary += "no promotion recorded"
			}
			if r.FirstWriteNS >= 0 {
				chk.Summary += fmt.Sprintf(", first write after %s", fmtNS(r.ToFirstWriteNS))
			} else {
				chk.Summary += ", no acknowledged write after it"
			}
		}
	}
	chk.ElapsedNS = time.Since(start).Nanoseconds()
	return chk
}

// rtos measures each kill of the primary: kill = completion of the
// kill-primary start; promotion = the moment the next failover step naming
// a primary pointed the clients at it (its switch-primary line: the
// nemesis verifies the new primary after that, so that the verification
// does not delay the first write), or that step's completion in histories
// without one; first write = the first acknowledged client write
// completed after the promotion (after the kill if none) and invoked after
// the kill. wcomp and winv are the acknowledged writes' completion and
// invoke times in completion order.
// switchWithin finds the switch-primary line of window id that pointed the
// clients at primary while the nemesis step h.nemesis[at] ran, and returns
// its time.
func (h *history) switchWithin(at, id int, primary string) (int64, bool) {
	end := h.stepEnd(h.steps[h.nemesis[at]])
	for _, ni := range h.nemesis[at+1:] {
		n := h.steps[ni]
		if n.invT > end {
			break
		}
		if g := h.stepOp(n).Fault; g != nil && h.special[n.inv].F == "switch-primary" && g.ID == id && g.Primary == primary {
			return h.stepEnd(n), true
		}
	}
	return 0, false
}

func (h *history) rtos(wcomp, winv []int64) []RTO {
	var out []RTO
	for i, si := range h.nemesis {
		s := h.steps[si]
		f := h.stepOp(s).Fault
		if f == nil || f.Phase != results.PhaseStart || (f.Kind != kindKillPrimary && h.special[s.inv].F != kindKillPrimary) {
			continue
		}
		r := RTO{FaultID: f.ID, KillNS: h.stepEnd(s), PromotedNS: -1, FirstWriteNS: -1, ToPromotionNS: -1, ToFirstWriteNS: -1}
		if len(f.Targets) > 0 {
			r.Old = f.Targets[0]
		}
		for _, ni := range h.nemesis[i+1:] {
			n := h.steps[ni]
			g := h.stepOp(n).Fault
			if g == nil {
				continue
			}
			if g.Phase == results.PhaseStart && (g.Kind == kindKillPrimary || h.special[n.inv].F == kindKillPrimary) {
				break // the next kill
			}
			if f := h.special[n.inv].F; g.Phase == results.PhaseStep && (g.Kind == kindFailover || f == kindFailover || f == "await-primary") && g.Primary != "" {
				r.PromotedNS, r.New = h.stepEnd(n), g.Primary
				if sw, ok := h.switchWithin(ni, g.ID, g.Primary); ok {
					r.PromotedNS = sw
				}
				r.ToPromotionNS = r.PromotedNS - r.KillNS
				break
			}
		}
		after := r.KillNS
		if r.PromotedNS >= 0 {
			after = r.PromotedNS
		}
		for j := sort.Search(len(wcomp), func(k int) bool { return wcomp[k] > after }); j < len(wcomp); j++ {
			if winv[j] > r.KillNS {
				r.FirstWriteNS = wcomp[j]
				r.ToFirstWriteNS = r.FirstWriteNS - r.KillNS
				break
			}
		}
		out = append(out, r)
	}
	return out
}
