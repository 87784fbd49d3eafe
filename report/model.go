package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/results"
)

// outcome indexes the three completion types in plots and counts.
type outcome int

const (
	outOK outcome = iota
	outFail
	outInfo
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"ok", "fail", "info"}

func outcomeOf(t results.Type) (outcome, bool) {
	switch t {
	case results.OK:
		return outOK, true
	case results.Fail:
		return outFail, true
	case results.Info:
		return outInfo, true
	}
	return 0, false
}

// completion is one client operation as the plots need it.
type completion struct {
	invokeNS, completeNS, latencyNS int64
	out                             outcome
}

// window is one fault window on the run's clock. stopNS is -1 while open.
type window struct {
	ID      int
	Kind    string
	Targets []string
	StartNS int64
	StopNS  int64
}

func (w window) label() string {
	s := fmt.Sprintf("#%d %s", w.ID, w.Kind)
	if len(w.Targets) > 0 {
		s += " " + strings.Join(w.Targets, ",")
	}
	return s
}

// timeline is what the report derives from a history.
type timeline struct {
	// completions are the client operations to plot: every one up to
	// keptCompletions, then thinned to one per cell of a latency grid
	// (thinned counts those dropped); counts are exact either way.
	completions []completion
	thinned     int
	counts      [nOutcomes]int
	// rate counts completions per outcome in fine time bins, exactly.
	rate       binCounts
	windows    []window
	nemesis    []nemesisStep
	durationNS int64
	nodes      []string
	// openSteps are nemesis invokes not yet completed, by process, f,
	// fault id and phase.
	openSteps map[string]results.Op
}

// keptCompletions bounds the completions a timeline keeps to plot; past it
// they are thinned, so a report of any run is drawn in bounded memory.
var keptCompletions = 1 << 20

// binCounts counts events per outcome in bins whose width doubles whenever
// maxFineBins would be passed: exact counts in bounded memory.
type binCounts struct {
	widthNS int64
	counts  [nOutcomes][]int64
}

const maxFineBins = 1 << 16

func (b *binCounts) add(t int64, o outcome) {
	if b.widthNS == 0 {
		b.widthNS = int64(time.Millisecond)
	}
	if t < 0 {
		t = 0
	}
	i := t / b.widthNS
	for i >= maxFineBins {
		b.coarsen()
		i = t / b.widthNS
	}
	c := &b.counts[o]
	for int64(len(*c)) <= i {
		*c = append(*c, 0)
	}
	(*c)[i]++
}

// coarsen halves the resolution.
func (b *binCounts) coarsen() {
	for o := range b.counts {
		c := b.counts[o]
		n := (len(c) + 1) / 2
		for i := range n {
			v := c[2*i]
			if 2*i+1 < len(c) {
				v += c[2*i+1]
			}
			c[i] = v
		}
		b.counts[o] = c[:n]
	}
	b.widthNS *= 2
}

// nemesisStep is one nemesis or harness step: its completion (which holds
// what the step saw), or its invoke when it never completed.
type nemesisStep struct {
	Op      results.Op
	StartNS int64
	Open    bool
}

// addNemesis records a nemesis step. Fault windows follow the checker's
// rule: a window opens at the invoke of its first start step and closes at
// the completion of its last stop step.
func (tl *timeline) addNemesis(op *results.Op, windows map[int]int) {
	key := op.Process.String() + "/" + op.F
	if f := op.Fault; f != nil {
		key += "/" + strconv.Itoa(f.ID) + "/" + f.Phase
		switch f.Phase {
		case results.PhaseStart:
			if _, ok := windows[f.ID]; !ok {
				kind := f.Kind
				if kind == "" {
					kind = op.F
				}
				windows[f.ID] = len(tl.windows)
				tl.windows = append(tl.windows, window{ID: f.ID, Kind: kind, Targets: f.Targets, StartNS: op.Time, StopNS: -1})
			}
		case results.PhaseStop:
			if j, ok := windows[f.ID]; ok {
				tl.windows[j].StopNS = op.Time
			}
		}
	}
	if op.Type == results.Invoke {
		tl.openSteps[key] = *op
		return
	}
	start := op.Time - op.Latency
	if inv, ok := tl.openSteps[key]; ok {
		delete(tl.openSteps, key)
		start = inv.Time
	}
	tl.nemesis = append(tl.nemesis, nemesisStep{Op: *op, StartNS: start})
}

// Timeline is what a report draws of a history, built one operation at a
// time as the history is read (Add), so that neither the harness nor
// `strongcheck report` keeps the history in memory. End closes it with
// what the scan said of the history's end.
type Timeline struct {
	tl      *timeline
	open    map[results.Process]int64
	nodes   map[string]bool
	windows map[int]int
	tail    results.Tail
	ended   bool
}

// NewTimeline starts an empty timeline.
func NewTimeline() *Timeline {
	return &Timeline{tl: &timeline{openSteps: map[string]results.Op{}}, open: map[results.Process]int64{},
		nodes: map[string]bool{}, windows: map[int]int{}}
}

// Add takes the next operation of the history, in order. Completions
// without an invoke are counted; their latency is taken from the op.
func (t *Timeline) Add(op *results.Op) {
	tl := t.tl
	if op.Time > tl.durationNS {
		tl.durationNS = op.Time
	}
	if op.Node != "" {
		t.nodes[op.Node] = true
	}
	if op.Process == results.NemesisProcess || op.Fault != nil {
		tl.addNemesis(op, t.windows)
		return
	}
	if !op.Process.IsClient() {
		return
	}
	if op.Type == results.Invoke {
		t.open[op.Process] = op.Time
		return
	}
	out, ok := outcomeOf(op.Type)
	if !ok {
		return
	}
	c := completion{completeNS: op.Time, latencyNS: op.Latency, out: out}
	if inv, ok := t.open[op.Process]; ok {
		c.invokeNS = inv
		if c.latencyNS <= 0 {
			c.latencyNS = op.Time - inv
		}
		delete(t.open, op.Process)
	} else {
		c.invokeNS = op.Time - c.latencyNS
	}
	tl.counts[out]++
	tl.rate.add(c.completeNS, out)
	tl.completions = append(tl.completions, c)
	if len(tl.completions) >= keptCompletions {
		n := len(tl.completions)
		tl.completions = thinCompletions(tl.completions, tl.durationNS)
		tl.thinned += n - len(tl.completions)
	}
}

// End records how the history ended (torn or not) and finishes the
// timeline; Add must not be called after it.
func (t *Timeline) End(tail results.Tail) {
	t.tail, t.ended = tail, true
	tl := t.tl
	// Steps still open when the history ended: the run was killed during
	// them.
	for _, inv := range tl.openSteps {
		tl.nemesis = append(tl.nemesis, nemesisStep{Op: inv, StartNS: inv.Time, Open: true})
	}
	tl.openSteps = map[string]results.Op{}
	sort.SliceStable(tl.nemesis, func(a, b int) bool { return tl.nemesis[a].StartNS < tl.nemesis[b].StartNS })
	tl.nodes = tl.nodes[:0]
	for n := range t.nodes {
		tl.nodes = append(tl.nodes, n)
	}
	sort.Strings(tl.nodes)
}

// Torn reports the history ended in a torn line, and which.
func (t *Timeline) Torn() (bool, int) { return t.tail.Torn, t.tail.TornLine }

// TimelineOf builds the timeline of a history in memory.
func TimelineOf(h *results.History) *Timeline {
	t := NewTimeline()
	for i := range h.Ops {
		t.Add(&h.Ops[i])
	}
	t.End(results.Tail{Lines: len(h.Ops), Torn: h.Torn, TornLine: h.TornLine})
	return t
}

// buildTimeline walks a history once.
func buildTimeline(h *results.History) *timeline { return TimelineOf(h).tl }

// thinCompletions keeps one completion per outcome per cell of a grid over
// [0, durationNS] by log latency, in order: outliers survive, density does
// not.
func thinCompletions(cs []completion, durationNS int64) []completion {
	const logLo, logHi = 0.0, 30.0 // 1 ns to ~10^13 ns, natural log
	xspan := float64(max(durationNS, 1))
	seen := make(map[int64]struct{}, 1<<14)
	out := cs[:0]
	for _, c := range cs {
		cx := int64(float64(c.invokeNS) / xspan * 2 * thinCellsX)
		cy := int64((math.Log(float64(max(c.latencyNS, 1))) - logLo) / (logHi - logLo) * 2 * thinCellsY)
		k := (cx*(2*thinCellsY+1)+cy)*int64(nOutcomes) + int64(c.out)
		if _, ok := seen[k]; ok {
			continue
		}
		seen[k] = struct{}{}
		out = append(out, c)
	}
	return out
}

// windowsFromResult is the fault windows when there is no history to read
// them from.
func windowsFromResult(res *checker.Result) []window {
	if a := availability(res); a != nil {
		out := make([]window, 0, len(a.Windows))
		for _, w := range a.Windows {
			out = append(out, window{ID: w.ID, Kind: w.Kind, Targets: w.Targets, StartNS: w.StartNS, StopNS: w.StopNS})
		}
		return out
	}
	return nil
}

func availability(res *checker.Result) *checker.AvailabilityResult {
	if c := findCheck(res, checker.NameAvailability); c != nil {
		return c.Availability
	}
	return nil
}

func findCheck(res *checker.Result, name string) *checker.Check {
	if res == nil {
		return nil
	}
	for i := range res.Checks {
		if res.Checks[i].Name == name {
			return &res.Checks[i]
		}
	}
	return nil
}
