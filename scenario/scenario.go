// Package scenario is the zoo: named, reproducible tests of the documented
// ways synchronous replication loses data (and the configuration that does
// not), each with the verdict and the anomaly it must produce. A scenario is
// a set of `strongcheck test` flags, so that what the zoo runs is exactly
// what a user can type.
package scenario

import (
	"fmt"
	"sort"
	"strings"

	"github.com/strongcheck/strongcheck/checker"
)

// Scenario is one entry of the zoo.
type Scenario struct {
	Name string
	// Shows is what the scenario shows about PostgreSQL, in a sentence.
	Shows string
	// Args are the `strongcheck test` flags it stands for.
	Args []string
	// Expect is the verdict it must produce, Anomaly the finding, in words.
	Expect  checker.Verdict
	Anomaly string
	// Found says whether a result shows the expected finding.
	Found func(*checker.Result) bool
}

// Command is the command line that reproduces the scenario.
func (s Scenario) Command() string {
	return "strongcheck test --scenario " + s.Name
}

func check(r *checker.Result, name string) *checker.Check {
	for i := range r.Checks {
		if r.Checks[i].Name == name {
			return &r.Checks[i]
		}
	}
	return nil
}

func lostWrites(r *checker.Result) bool {
	c := check(r, checker.NameRPO)
	return c != nil && c.Verdict == checker.Invalid && c.RPO != nil && len(c.RPO.Lost) > 0
}

// common flags: short runs, several faults per run.
var quick = []string{"--time-limit", "30s", "--nemesis-interval", "7s"}

func args(extra ...string) []string { return append(append([]string(nil), quick...), extra...) }

// All is the zoo, in the order of the README's track record; the
// list-append scenarios (listappend.go) come last.
var All = append([]Scenario{
	{
		Name:  "async-failover",
		Shows: "with asynchronous replication, a failover while the standbys lag behind a congested link loses writes the old primary had acknowledged",
		// On a local veth an asynchronous standby trails by microseconds
		// and a plain kill loses a write only now and then; the guide's
		// standbys are in other regions, behind WAN links that congest.
		Args:    args("--pg-conf", "synchronous_standby_names=", "--workload", "set", "--read-from", "primary", "--nemesis", "lag-then-kill"),
		Expect:  checker.Invalid,
		Anomaly: "lost acknowledged writes",
		Found:   lostWrites,
	},
	{
		Name:    "local-commit-failover",
		Shows:   "synchronous_commit=local acknowledges before any standby has the commit: a failover while standbys lag loses it",
		Args:    args("--pg-conf", "synchronous_commit=local", "--workload", "set", "--read-from", "primary", "--nemesis", "lag-then-kill"),
		Expect:  checker.Invalid,
		Anomaly: "lost acknowledged writes",
		Found:   lostWrites,
	},
	{
		Name:    "stale-standby-reads",
		Shows:   "with the guide's synchronous_commit=on a standby can serve a value older than an acknowledged write (on waits for flush, not replay)",
		Args:    args("--workload", "register", "--read-from", "standbys", "--nemesis", "none"),
		Expect:  checker.Invalid,
		Anomaly: "stale reads on standbys",
		Found: func(r *checker.Result) bool {
			c := check(r, checker.NameStaleRead)
			return c != nil && c.Verdict == checker.Invalid
		},
	},
	{
		Name:    "remote-apply-reads",
		Shows:   "synchronous_commit=remote_apply makes every acknowledged write visible on the standbys: no stale read after an acknowledgement",
		Args:    args("--pg-conf", "synchronous_commit=remote_apply", "--workload", "register", "--read-from", "standbys", "--nemesis", "none"),
		Expect:  checker.Valid,
		Anomaly: "no stale read (stale-read check valid)",
		Found: func(r *checker.Result) bool {
			c := check(r, checker.NameStaleRead)
			return c != nil && c.Verdict == checker.Valid && c.StaleRead != nil && c.StaleRead.Reads > 0
		},
	},
	{
		Name:    "any1-wrong-promotion",
		Shows:   "with ANY 1, promoting the standby that was cut off loses the writes only the other standby had",
		Args:    args("--pg-conf", "synchronous_standby_names=ANY 1 (n2, n3)", "--workload", "set", "--read-from", "primary", "--nemesis", "cut-then-kill", "--failover", "promote:lagging"),
		Expect:  checker.Invalid,
		Anomaly: "lost acknowledged writes",
		Found:   lostWrites,
	},
	{
		Name:    "cancel-sync-wait",
		Shows:   "cancelling a commit that waits for a cut-off standby acknowledges it with a warning; failing over to that standby loses it, and reads had seen it",
		Args:    args("--workload", "set", "--read-from", "primary", "--nemesis", "cut-then-kill:cancel", "--failover", "promote:lagging"),
		Expect:  checker.Invalid,
		Anomaly: "acknowledged-with-warning writes lost, values read then vanished",
		Found: func(r *checker.Result) bool {
			c := check(r, checker.NameRPO)
			return c != nil && c.RPO != nil && len(c.RPO.LostWithWarning) > 0
		},
	},
	{
		Name:    "timeout-then-vanish",
		Shows:   "a client timeout during a commit waiting for a cut-off standby makes the row visible on the primary; after failover to that standby the row vanishes though it was read",
		Args:    args("--workload", "register", "--read-from", "primary", "--op-timeout", "1s", "--nemesis", "cut-then-kill", "--failover", "promote:lagging"),
		Expect:  checker.Invalid,
		Anomaly: "reads of values that vanished (not linearizable)",
		Found: func(r *checker.Result) bool {
			c := check(r, checker.NameLinearizable)
			return c != nil && c.Verdict == checker.Invalid
		},
	},
	{
		Name:    "sound-default",
		Shows:   "the guide's configuration (ANY 2, on) keeps every acknowledged write through kills of the primary and standby partitions, reads on the primary",
		Args:    args("--workload", "register,set", "--read-from", "primary", "--nemesis", "kill-primary,partition:standby", "--failover", "auto"),
		Expect:  checker.Valid,
		Anomaly: "none (valid)",
		Found:   func(r *checker.Result) bool { return r.Verdict == checker.Valid },
	},
}, listAppendScenarios...)

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
// operation any invalid checker names as evidence (-1 when none).
func FirstAnomalyNS(r *checker.Result) int64 {
	first := int64(-1)
	see := func(ns int64) {
		if ns >= 0 && (first < 0 || ns < first) {
			first = ns
		}
	}
	for _, c := range r.Checks {
		if c.Verdict != checker.Invalid {
			continue
		}
		if c.RPO != nil {
			for _, o := range c.RPO.Lost {
				see(o.CompleteNS)
			}
			for _, o := range c.RPO.Vanished {
				see(o.InvokeNS)
			}
			for _, o := range c.RPO.Unexpected {
				see(o.InvokeNS)
			}
		}
		if c.StaleRead != nil {
			for _, s := range c.StaleRead.Stale {
				see(s.Read.InvokeNS)
			}
		}
		if c.Linearizable != nil {
			for _, refs := range c.Linearizable.Evidence {
				for _, o := range refs {
					see(o.InvokeNS)
				}
			}
		}
		if c.Bank != nil {
			for _, b := range c.Bank.BadReads {
				see(b.Read.InvokeNS)
			}
		}
		see(listAppendFirstNS(&c))
	}
	return first
}
