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
	}
	chk.ElapsedNS = time.Since(start).Nanoseconds()
	return chk
}
