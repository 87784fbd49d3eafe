package checker

import (
	"fmt"
	"slices"
	"strings"
)

// Model names a consistency model a run's history is judged against. A
// model names the anomalies it forbids; a history satisfies it when none
// of them occurred and every check it relies on decided, and every fault
// took effect. Its JSON form is its name.
type Model string

// The models.
const (
	// ModelGuide is the guide's promise: every acknowledged write survives
	// every promotion (RPO = 0) and a read on any synchronized node returns
	// a value at least as new as every write acknowledged before it began.
	// It does not promise that the nodes show writes in one order
	// (new-then-old across nodes).
	ModelGuide Model = "guide"
	// ModelPostgres is what PostgreSQL documents for the run's effective
	// synchronous_commit and synchronous_standby_names: the anomalies it
	// documents are expected, any other is a finding.
	ModelPostgres Model = "postgres"
	// ModelLinearizable: every operation on every node takes effect at one
	// instant between its invocation and its completion.
	ModelLinearizable Model = "linearizable"
)

// Models lists the models in the order reports show them.
var Models = []Model{ModelGuide, ModelPostgres, ModelLinearizable}

// ModelHelp says in a sentence what each model asks.
var ModelHelp = map[Model]string{
	ModelGuide:        "the guide's promise: RPO = 0, and every read on any node at least as new as every write acknowledged before it began",
	ModelPostgres:     "what PostgreSQL documents for the run's synchronous_commit and synchronous_standby_names; documented anomalies are expected",
	ModelLinearizable: "every read on every node fits one order of the writes, in real time",
}

// ModelNames are Models' names, in their order.
func ModelNames() []string {
	out := make([]string, len(Models))
	for i, m := range Models {
		out[i] = string(m)
	}
	return out
}

// ValidModel reports whether m names a model.
func ValidModel(m Model) bool { return slices.Contains(Models, m) }

// ModelResult is one model's judgement of the history.
type ModelResult struct {
	Model   Model   `json:"model"`
	Verdict Verdict `json:"verdict"`
	// Summary reads "satisfies postgres" or "rules out guide: 90
	// stale-read", Elle's way of putting it.
	Summary string `json:"summary"`
	// RuledOutBy are the anomalies the model forbids that occurred.
	RuledOutBy []Ruling `json:"ruled_out_by,omitempty"`
	// Unknown says why the model could not be decided (a check that did
	// not finish, a fault that did not take effect).
	Unknown string `json:"unknown,omitempty"`
}

// Ruling is one anomaly that rules a model out.
type Ruling struct {
	Kind       Kind `json:"kind"`
	Count      int  `json:"count"`
	Documented bool `json:"documented"`
	// What says what Count counts where the anomaly's instances come from
	// more than one workload ("24 register reads, 14 set reads"), so that
	// the model line and the checks' own counts can be told apart.
	What string `json:"what,omitempty"`
}

// forbids says whether model m forbids anomaly a.
func forbids(m Model, a Anomaly) bool {
	switch m {
	case ModelLinearizable:
		return true
	case ModelPostgres:
		return !a.Documented
	case ModelGuide:
		return a.Kind != KindNewThenOld && a.Kind != KindNonLinearizableAll
	}
	return true
}

// relies says whether model m's verdict depends on check c.
func relies(m Model, c *Check) bool {
	return c.Name != NameLinearizableAll || m == ModelLinearizable
}

// judgeModels decides every model from the anomalies found and the checks'
// verdicts: invalid when a forbidden anomaly occurred, else unknown when a
// check the model relies on could not decide, else valid.
func judgeModels(anoms []Anomaly, checks []Check) []ModelResult {
	out := make([]ModelResult, 0, len(Models))
	for _, m := range Models {
		mr := ModelResult{Model: m, Verdict: Valid}
		for _, a := range anoms {
			if forbids(m, a) {
				mr.RuledOutBy = append(mr.RuledOutBy, Ruling{Kind: a.Kind, Count: a.Count, Documented: a.Documented,
					What: workloadsPhrase(a.ByWorkload, "read", "reads")})
			}
		}
		var undecided []string
		for i := range checks {
			if c := &checks[i]; c.Verdict == Unknown && relies(m, c) {
				why := c.Error
				if why == "" {
					why = c.Summary
				}
				undecided = append(undecided, c.Name+": "+why)
			}
		}
		switch {
		case len(mr.RuledOutBy) > 0:
			mr.Verdict = Invalid
			var parts []string
			for _, r := range mr.RuledOutBy {
				p := fmt.Sprintf("%d %s", r.Count, r.Kind)
				if r.What != "" {
					p += " (" + r.What + ")"
				}
				if m != ModelPostgres && r.Documented {
					p += " (documented)"
				}
				parts = append(parts, p)
			}
			mr.Summary = fmt.Sprintf("rules out %s: %s", m, strings.Join(parts, ", "))
			if len(undecided) > 0 {
				mr.Unknown = strings.Join(undecided, "; ")
			}
		case len(undecided) > 0:
			mr.Verdict = Unknown
			mr.Unknown = strings.Join(undecided, "; ")
			mr.Summary = fmt.Sprintf("cannot decide %s: %s", m, mr.Unknown)
		default:
			mr.Summary = "satisfies " + string(m)
		}
		out = append(out, mr)
	}
	return out
}

// ModelResult returns the judgement of model m, or nil.
func (r *Result) ModelResult(m Model) *ModelResult {
	for i := range r.Models {
		if r.Models[i].Model == m {
			return &r.Models[i]
		}
	}
	return nil
}

// ModelsLine is one line for every model: "satisfies postgres; rules out
// guide: 90 stale-read; ...".
func (r *Result) ModelsLine() string {
	parts := make([]string, 0, len(r.Models))
	for _, m := range r.Models {
		parts = append(parts, m.Summary)
	}
	return strings.Join(parts, "; ")
}
