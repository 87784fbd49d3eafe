// Package scenario is the zoo: named, reproducible tests of the documented
// ways synchronous replication loses data (and of the configurations that
// do not), each stating the verdict it must have under each model and the
// anomalies it must (and must not) show. A scenario is a set of
// `strongcheck test` flags, so that what the zoo runs is exactly what a
// user can type.
package scenario

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/checker"
)

// Expect is one anomaly a scenario's every run must show: its kind, and
// whether PostgreSQL documents it for the scenario's configuration (Either:
// not asserted, where an HA manager chooses the settings as it runs).
type Expect struct {
	Kind       checker.Kind
	Documented bool
	Either     bool
}

func (e Expect) String() string {
	switch {
	case e.Either:
		return string(e.Kind)
	case e.Documented:
		return string(e.Kind) + " (documented)"
	}
	return string(e.Kind) + " (a finding)"
}

// Scenario is one entry of the zoo.
type Scenario struct {
	Name string
	// Shows is what the scenario shows about PostgreSQL, in a sentence.
	Shows string
	// Args are the `strongcheck test` flags it stands for.
	Args []string
	// Expect is the overall verdict (under the model its flags choose,
	// guide by default) every run must have.
	Expect checker.Verdict
	// Models are the verdicts every run must have under these models;
	// models not named are not asserted.
	Models map[checker.Model]checker.Verdict
	// Must are the anomalies every run must show; MustNot the kinds no run
	// may show. OnlyBy, when set, names the only kinds that may rule each
	// model out.
	Must    []Expect
	MustNot []checker.Kind
	OnlyBy  map[checker.Model][]checker.Kind
	// Tolerate names known PostgreSQL bugs the scenario is not about: a
	// run that a valid scenario expects valid, and that is invalid only
	// because of these kinds (under the overall model and every model
	// asserted), still counts as expected, and Check says so. The run's
	// own verdict stays invalid.
	Tolerate []checker.Kind
	// Manager is the HA manager the scenario runs ("" for none): its
	// packages must be installed (scripts/install-deps.sh --managers).
	Manager string
	// MinTimeLimit is the shortest run in which the scenario can show its
	// finding (a manager's failover takes its ttl or health timeouts):
	// `zoo --time-limit` does not go below it.
	MinTimeLimit time.Duration
}

// Command is the command line that reproduces the scenario.
func (s Scenario) Command() string {
	return "strongcheck test --scenario " + s.Name
}

// Finds describes, in a few words, what every run must show.
func (s Scenario) Finds() string {
	var parts []string
	for _, m := range checker.Models {
		if v, ok := s.Models[m]; ok {
			parts = append(parts, fmt.Sprintf("%s %s", m, v))
		}
	}
	for _, e := range s.Must {
		parts = append(parts, e.String())
	}
	for _, k := range s.MustNot {
		parts = append(parts, "no "+string(k))
	}
	for _, k := range s.Tolerate {
		parts = append(parts, "tolerates "+string(k))
	}
	return strings.Join(parts, "; ")
}

// Check reports whether a run's result is what the scenario must produce,
// and when it is not, why. A run that is as expected only because the
// scenario tolerates the kinds that ruled it out (Tolerate) is ok with a
// note saying so: ok with a non-empty note is never the scenario's own
// finding.
func (s Scenario) Check(r *checker.Result) (bool, string) {
	var why, tolerated []string
	if r.Verdict != s.Expect {
		if s.tolerated(r.ModelResult(r.Model), s.Expect) {
			tolerated = append(tolerated, string(r.Model))
		} else {
			why = append(why, fmt.Sprintf("verdict %s under %s, want %s", r.Verdict, r.Model, s.Expect))
		}
	}
	for _, m := range checker.Models {
		want, ok := s.Models[m]
		if !ok {
			continue
		}
		mr := r.ModelResult(m)
		switch {
		case mr == nil:
			why = append(why, "no judgement under "+string(m))
		case mr.Verdict != want && s.tolerated(mr, want):
			if !slices.Contains(tolerated, string(m)) {
				tolerated = append(tolerated, string(m))
			}
		case mr.Verdict != want:
			why = append(why, fmt.Sprintf("%s: %s, want %s (%s)", m, mr.Verdict, want, mr.Summary))
		}
	}
	for _, e := range s.Must {
		if !has(r, e.Kind, e.Documented) && !(e.Either && has(r, e.Kind, !e.Documented)) {
			why = append(why, "no "+e.String())
		}
	}
	for _, k := range s.MustNot {
		if has(r, k, true) || has(r, k, false) {
			why = append(why, "unexpected "+string(k))
		}
	}
	for m, kinds := range s.OnlyBy {
		if mr := r.ModelResult(m); mr != nil {
			for _, ru := range mr.RuledOutBy {
				if !slices.Contains(kinds, ru.Kind) {
					why = append(why, fmt.Sprintf("%s is also ruled out by %d %s", m, ru.Count, ru.Kind))
				}
			}
		}
	}
	if len(why) == 0 && len(tolerated) > 0 {
		return true, fmt.Sprintf("invalid under %s only by %s, a known PostgreSQL bug this scenario tolerates",
			strings.Join(tolerated, ", "), kindList(s.Tolerate))
	}
	return len(why) == 0, strings.Join(why, "; ")
}

// tolerated reports whether mr, which should be want, is invalid instead
// only by kinds the scenario tolerates.
func (s Scenario) tolerated(mr *checker.ModelResult, want checker.Verdict) bool {
	if mr == nil || want != checker.Valid || mr.Verdict != checker.Invalid || len(mr.RuledOutBy) == 0 {
		return false
	}
	for _, ru := range mr.RuledOutBy {
		if !slices.Contains(s.Tolerate, ru.Kind) {
			return false
		}
	}
	return true
}

func kindList(ks []checker.Kind) string {
	ss := make([]string, len(ks))
	for i, k := range ks {
		ss[i] = string(k)
	}
	return strings.Join(ss, ", ")
}

func has(r *checker.Result, k checker.Kind, documented bool) bool {
	for _, a := range r.Anomalies {
		if a.Kind == k && a.Documented == documented && a.Count > 0 {
			return true
		}
	}
	return false
}

// common flags: short runs, several faults per run.
var quick = []string{"--time-limit", "30s", "--nemesis-interval", "7s"}

func args(extra ...string) []string { return append(append([]string(nil), quick...), extra...) }

// Short names for the verdicts of the three models.
var (
	guideOnly = func(g, p checker.Verdict) map[checker.Model]checker.Verdict {
		return map[checker.Model]checker.Verdict{checker.ModelGuide: g, checker.ModelPostgres: p}
	}
	allThree = func(g, p, l checker.Verdict) map[checker.Model]checker.Verdict {
		return map[checker.Model]checker.Verdict{checker.ModelGuide: g, checker.ModelPostgres: p, checker.ModelLinearizable: l}
	}
	lossKinds = []checker.Kind{checker.KindLostWrite, checker.KindLostWarned, checker.KindVanished}
)

// All is the zoo, in the order of the README's track record; the HA
// managers' scenarios (managers.go) and the list-append ones
// (listappend.go) come last.
var All = append([]Scenario{
	{
		Name:  "default-test",
		Shows: "the default test on the guide's settings (ANY 2, on; reads on every node; kill-primary and partition): the guide's promise breaks only by stale reads on the standbys, which PostgreSQL documents; judged by --model postgres, the form a nightly job uses, it is valid",
		Args:  []string{"--time-limit", "30s", "--model", string(checker.ModelPostgres)},
		// The default test's own flags, judged as a nightly job does.
		Expect: checker.Valid,
		Models: guideOnly(checker.Invalid, checker.Valid),
		Must:   []Expect{{Kind: checker.KindStaleRead, Documented: true}},
		OnlyBy: map[checker.Model][]checker.Kind{checker.ModelGuide: {checker.KindStaleRead}},
	},
	{
		Name:  "async-failover",
		Shows: "with asynchronous replication, a failover while the standbys lag behind a congested link loses writes the old primary had acknowledged (auto failover refuses: no standby is known to hold them; promote:most-advanced is what an operator does)",
		// On a local veth an asynchronous standby trails by microseconds
		// and a plain kill loses a write only now and then; the guide's
		// standbys are in other regions, behind WAN links that congest.
		Args:   args("--pg-conf", "synchronous_standby_names=", "--workload", "set", "--read-from", "primary", "--nemesis", "lag-then-kill", "--failover", "promote:most-advanced"),
		Expect: checker.Invalid,
		Models: guideOnly(checker.Invalid, checker.Valid),
		Must:   []Expect{{Kind: checker.KindLostWrite, Documented: true}},
	},
	{
		Name:   "local-commit-failover",
		Shows:  "synchronous_commit=local acknowledges before any standby has the commit: a failover while standbys lag loses it",
		Args:   args("--pg-conf", "synchronous_commit=local", "--workload", "set", "--read-from", "primary", "--nemesis", "lag-then-kill", "--failover", "promote:most-advanced"),
		Expect: checker.Invalid,
		Models: guideOnly(checker.Invalid, checker.Valid),
		Must:   []Expect{{Kind: checker.KindLostWrite, Documented: true}},
	},
	{
		Name:    "stale-standby-reads",
		Shows:   "with the guide's synchronous_commit=on a standby can serve a value older than an acknowledged write (on waits for flush, not replay)",
		Args:    args("--workload", "register", "--read-from", "standbys", "--nemesis", "none"),
		Expect:  checker.Invalid,
		Models:  guideOnly(checker.Invalid, checker.Valid),
		Must:    []Expect{{Kind: checker.KindStaleRead, Documented: true}},
		MustNot: lossKinds,
	},
	{
		Name:    "remote-apply-reads",
		Shows:   "synchronous_commit=remote_apply makes every acknowledged write visible on the standbys: no stale read after an acknowledgement (the standbys still show writes in their own order, so reads across nodes are not linearizable)",
		Args:    args("--pg-conf", "synchronous_commit=remote_apply", "--workload", "register", "--read-from", "standbys", "--nemesis", "none"),
		Expect:  checker.Valid,
		Models:  guideOnly(checker.Valid, checker.Valid),
		MustNot: append([]checker.Kind{checker.KindStaleRead, checker.KindNonMonotonic}, lossKinds...),
	},
	{
		Name:   "any1-wrong-promotion",
		Shows:  "with ANY 1, promoting the standby that was cut off loses the writes only the other standby had",
		Args:   args("--pg-conf", "synchronous_standby_names=ANY 1 (n2, n3)", "--workload", "set", "--read-from", "primary", "--nemesis", "cut-then-kill", "--failover", "promote:lagging"),
		Expect: checker.Invalid,
		Models: guideOnly(checker.Invalid, checker.Valid),
		Must:   []Expect{{Kind: checker.KindLostWrite, Documented: true}},
	},
	{
		Name:   "cancel-sync-wait",
		Shows:  "cancelling a commit that waits for a cut-off standby acknowledges it with a warning; failing over to that standby loses it, and reads had seen it",
		Args:   args("--workload", "set", "--read-from", "primary", "--nemesis", "cut-then-kill:cancel", "--failover", "promote:lagging"),
		Expect: checker.Invalid,
		Models: guideOnly(checker.Invalid, checker.Valid),
		Must:   []Expect{{Kind: checker.KindLostWarned, Documented: true}},
	},
	{
		Name:   "timeout-then-vanish",
		Shows:  "a client timeout during a commit waiting for a cut-off standby makes the row visible on the primary; after failover to that standby the row vanishes though it was read",
		Args:   args("--workload", "register", "--read-from", "primary", "--op-timeout", "1s", "--nemesis", "cut-then-kill", "--failover", "promote:lagging"),
		Expect: checker.Invalid,
		Models: guideOnly(checker.Invalid, checker.Valid),
		Must:   []Expect{{Kind: checker.KindVanished, Documented: true}},
	},
	{
		Name:    "sound-default",
		Shows:   "the guide's configuration (ANY 2, on) keeps every acknowledged write through kills of the primary and standby partitions, reads on the primary",
		Args:    args("--workload", "register,set", "--read-from", "primary", "--nemesis", "kill-primary,partition:standby", "--failover", "auto"),
		Expect:  checker.Valid,
		Models:  allThree(checker.Valid, checker.Valid, checker.Valid),
		MustNot: lossKinds,
	},
	{
		Name:    "first1-failover",
		Shows:   "with FIRST 1 (n2, n3) a commit waits for one standby, so auto failover promotes only when both standbys answer, the more advanced of them: every acknowledged write survives",
		Args:    args("--pg-conf", "synchronous_standby_names=FIRST 1 (n2, n3)", "--workload", "register,set", "--read-from", "primary", "--nemesis", "kill-primary", "--failover", "auto"),
		Expect:  checker.Valid,
		Models:  allThree(checker.Valid, checker.Valid, checker.Valid),
		MustNot: lossKinds,
	},
}, slices.Concat(managerScenarios, listAppendScenarios)...)

// Get returns the scenario called name.
func Get(name string) (Scenario, error) {
	for _, s := range All {
		if s.Name == name {
			return s, nil
		}
	}
	var names []string
	for _, s := range All {
		names = append(names, s.Name)
	}
	sort.Strings(names)
	return Scenario{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(names, ", "))
}

// FirstAnomalyNS is the time, from the start of the run, of the earliest
// operation any anomaly that rules out the run's model names as evidence
// (-1 when none).
func FirstAnomalyNS(r *checker.Result) int64 {
	first := int64(-1)
	see := func(ns int64) {
		if ns >= 0 && (first < 0 || ns < first) {
			first = ns
		}
	}
	mr := r.ModelResult(r.Model)
	for _, a := range r.Anomalies {
		ruling := mr == nil
		if mr != nil {
			for _, ru := range mr.RuledOutBy {
				ruling = ruling || (ru.Kind == a.Kind && ru.Documented == a.Documented)
			}
		}
		if !ruling {
			continue
		}
		for _, e := range a.Examples {
			if len(e.Ops) > 0 {
				see(e.Ops[0].InvokeNS)
			}
		}
	}
	return first
}
