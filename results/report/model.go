package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

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
	completions []completion
	counts      [nOutcomes]int
	windows     []window
	nemesis     []nemesisStep
	durationNS  int64
	nodes       []string
	// openSteps are nemesis invokes not yet completed, by process, f,
	// fault id and phase.
	openSteps map[string]results.Op
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

// buildTimeline walks the history once. Completions without an invoke are
// still counted; their latency is taken from the op when it has one.
func buildTimeline(h *results.History) *timeline {
	tl := &timeline{openSteps: map[string]results.Op{}}
	open := map[results.Process]int64{}
	nodes := map[string]bool{}
	windows := map[int]int{} // fault id -> index in tl.windows
	for i := range h.Ops {
		op := &h.Ops[i]
		if op.Time > tl.durationNS {
			tl.durationNS = op.Time
		}
		if op.Node != "" {
			nodes[op.Node] = true
		}
		if op.Process == results.NemesisProcess || op.Fault != nil {
			tl.addNemesis(op, windows)
			continue
		}
		if !op.Process.IsClient() {
			continue
		}
		if op.Type == results.Invoke {
			open[op.Process] = op.Time
			continue
		}
		out, ok := outcomeOf(op.Type)
		if !ok {
			continue
		}
		c := completion{completeNS: op.Time, latencyNS: op.Latency, out: out}
		if inv, ok := open[op.Process]; ok {
			c.invokeNS = inv
			if c.latencyNS <= 0 {
				c.latencyNS = op.Time - inv
			}
			delete(open, op.Process)
		} else {
			c.invokeNS = op.Time - c.latencyNS
		}
		tl.counts[out]++
		tl.completions = append(tl.completions, c)
	}
	// Steps still open when the history ended: the run was killed during
	// them.
	for _, inv := range tl.openSteps {
		tl.nemesis = append(tl.nemesis, nemesisStep{Op: inv, StartNS: inv.Time, Open: true})
	}
	sort.SliceStable(tl.nemesis, func(a, b int) bool { return tl.nemesis[a].StartNS < tl.nemesis[b].StartNS })
	for n := range nodes {
		tl.nodes = append(tl.nodes, n)
	}
	sort.Strings(tl.nodes)
	return tl
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
