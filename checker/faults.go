package checker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// FaultsResult says whether every fault and failover step the nemesis took
// took effect. A step that failed or could not be verified, one that never
// completed, or a window never closed means the faults the verdict assumes
// did not all happen: the run cannot be valid for any model.
type FaultsResult struct {
	// Steps counts the nemesis steps recorded, Verified those whose
	// record says what was checked to know they took effect.
	Steps    int `json:"steps"`
	Verified int `json:"verified"`
	// Failed are the steps that failed or could not be verified, Open
	// those that never completed (the run ended during them).
	Failed []FailedStep `json:"failed,omitempty"`
	Open   []FailedStep `json:"open,omitempty"`
	// Unclosed are fault windows that opened and never closed.
	Unclosed []int `json:"unclosed,omitempty"`
	// TwoPrimaries are the steps after which more than one node was out
	// of recovery. With strongcheck's own failover such a step has failed
	// (it is in Failed too); with an external failover it is the HA
	// manager's state, listed here for the reader while the other checks
	// judge what it cost.
	TwoPrimaries []TwoPrimaries `json:"two_primaries,omitempty"`
}

// TwoPrimaries is one moment, recorded by a nemesis step, with more than
// one primary.
type TwoPrimaries struct {
	FaultID   int      `json:"fault_id"`
	Step      string   `json:"step"`
	Primaries []string `json:"primaries"`
	TimeNS    int64    `json:"time_ns"`
	// UntilNS is when a later nemesis step next saw at most one primary
	// (-1: none did before the history ends): an upper bound of the
	// moment's end, as steps record the nodes only when they complete.
	UntilNS int64 `json:"until_ns"`
}

func (p TwoPrimaries) String() string {
	s := fmt.Sprintf("after fault %d step %s: %s", p.FaultID, p.Step, strings.Join(p.Primaries, " and "))
	if p.UntilNS < 0 {
		return s + ", until the end of the history"
	}
	return s + fmt.Sprintf(", one primary at the next step that looked, %.1f s later", float64(p.UntilNS-p.TimeNS)/1e9)
}

// primariesOf lists the nodes a step's record saw out of recovery.
func primariesOf(f *results.Fault) []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, n := range f.Nodes {
		if n.Role == rolePrimary {
			out = append(out, n.Node)
		}
	}
	return out
}

// noteTwoPrimaries adds the step to res.TwoPrimaries when it saw more than
// one primary, and closes the open moments when it saw at most one (a
// step that recorded no node states says nothing either way).
func (res *FaultsResult) noteTwoPrimaries(fs FailedStep, f *results.Fault) {
	if f == nil || len(f.Nodes) == 0 {
		return
	}
	prim := primariesOf(f)
	if len(prim) <= 1 {
		for i := range res.TwoPrimaries {
			if res.TwoPrimaries[i].UntilNS < 0 {
				res.TwoPrimaries[i].UntilNS = fs.TimeNS
			}
		}
		return
	}
	res.TwoPrimaries = append(res.TwoPrimaries, TwoPrimaries{FaultID: fs.FaultID, Step: fs.Step, Primaries: prim, TimeNS: fs.TimeNS, UntilNS: -1})
}

// FailedStep is one nemesis step that did not (certainly) take effect.
type FailedStep struct {
	FaultID int      `json:"fault_id"`
	Kind    string   `json:"kind"`
	Step    string   `json:"step"`
	Phase   string   `json:"phase,omitempty"`
	Targets []string `json:"targets,omitempty"`
	Error   string   `json:"error,omitempty"`
	TimeNS  int64    `json:"time_ns"`
}

func (f FailedStep) String() string {
	s := fmt.Sprintf("fault %d (%s) step %s", f.FaultID, f.Kind, f.Step)
	if len(f.Targets) > 0 {
		s += " of " + strings.Join(f.Targets, ", ")
	}
	if f.Error != "" {
		s += ": " + f.Error
	}
	return s
}

// settleStep is the name of the harness's settle step (heal, restart,
// catch up after the last fault).
const settleStep = "settle"

// failedSettle returns the failed settle step, if the run had one. Only
// under an HA manager does a run go on after it (the harness repairs
// nothing there): the faults took effect, the cluster did not come back
// whole in time.
func (res *FaultsResult) failedSettle() (FailedStep, bool) {
	for _, f := range res.Failed {
		if f.Step == settleStep {
			return f, true
		}
	}
	return FailedStep{}, false
}

// onlySettle reports whether the failed settle step is the faults check's
// only problem.
func (res *FaultsResult) onlySettle() bool {
	_, ok := res.failedSettle()
	return ok && len(res.Failed) == 1 && len(res.Open) == 0 && len(res.Unclosed) == 0
}

// checkFaults judges the nemesis's record of its own steps.
func checkFaults(ctx context.Context, h *history) Check {
	start := time.Now()
	chk := Check{Name: NameFaults}
	res := &FaultsResult{}
	chk.Faults = res
	for c := range h.nemesisSteps() {
		inv := &h.special[c.inv]
		op := h.stepOp(c)
		res.Steps++
		fs := FailedStep{Step: inv.F, TimeNS: h.stepEnd(c), Error: op.Error}
		if f := op.Fault; f != nil {
			fs.FaultID, fs.Kind, fs.Phase, fs.Targets = f.ID, f.Kind, f.Phase, f.Targets
			if f.Verified != "" {
				res.Verified++
			}
		}
		if c.comp >= 0 {
			res.noteTwoPrimaries(fs, op.Fault)
		}
		switch {
		case c.comp < 0:
			fs.Error = "the step never completed (the run ended during it)"
			res.Open = append(res.Open, fs)
		case op.Type != results.OK:
			if fs.Error == "" {
				fs.Error = "the step ended " + string(op.Type)
			}
			res.Failed = append(res.Failed, fs)
		}
	}
	for _, w := range h.windows {
		if w.stop < 0 {
			res.Unclosed = append(res.Unclosed, w.id)
		}
	}
	var problems []string
	for _, f := range append(append([]FailedStep(nil), res.Failed...), res.Open...) {
		problems = append(problems, f.String())
	}
	if len(res.Unclosed) > 0 {
		problems = append(problems, fmt.Sprintf("fault windows %v never closed", res.Unclosed))
	}
	switch {
	case ctx.Err() != nil:
		chk.Verdict, chk.Error = Unknown, fmt.Sprintf("stopped: %v", ctx.Err())
		chk.Summary = "unknown: " + chk.Error
	case len(problems) > 0:
		chk.Verdict = Unknown
		chk.Error = listShort(problems, 3)
		chk.Summary = fmt.Sprintf("%d of %d nemesis steps did not certainly take effect: %s", len(res.Failed)+len(res.Open), res.Steps, chk.Error)
	case res.Steps == 0:
		chk.Verdict = Valid
		chk.Summary = "no fault was planned"
	default:
		chk.Verdict = Valid
		chk.Summary = fmt.Sprintf("all %d nemesis steps took effect (%d verified by observing processes, links or roles)", res.Steps, res.Verified)
		if len(res.TwoPrimaries) > 0 {
			chk.Summary += fmt.Sprintf("; %d saw two primaries, the external failover's state", len(res.TwoPrimaries))
		}
	}
	chk.ElapsedNS = time.Since(start).Nanoseconds()
	return chk
}
