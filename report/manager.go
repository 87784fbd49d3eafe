package report

import "github.com/strongcheck/strongcheck/results"

// managerSteps picks, from the nemesis timeline of a run under an HA
// manager, the manager's own account (the harness's "manager"
// observations) together with the fault steps around it (starts, stops,
// the failover the manager decided), in time order. It is empty when no
// manager was observed.
func managerSteps(steps []nemesisStep) []nemesisStep {
	seen := false
	for _, s := range steps {
		if s.Op.F == "manager" {
			seen = true
			break
		}
	}
	if !seen {
		return nil
	}
	var out []nemesisStep
	for _, s := range steps {
		f := s.Op.Fault
		switch {
		case s.Op.F == "manager", s.Op.F == "failover":
		case f != nil && (f.Phase == results.PhaseStart || f.Phase == results.PhaseStop):
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}
