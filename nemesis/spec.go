// Package nemesis injects the faults that break (or should not break) the
// promise of synchronous replication, on a schedule driven by the run's
// seed: kills of the primary with a failover policy, kills and clean
// restarts, pauses, partitions, cancelling commits that wait for a standby,
// and crashing the primary while commits wait. Every fault is a window in
// the history: an invoke and completion of process "nemesis" opening it
// (phase start), steps inside it (failover, rejoin), and a pair closing it
// (phase stop), each with every node's role and LSNs and the primary's
// pg_stat_replication at that moment.
//
// The nemesis never talks SQL to the clients' tables; it resolves roles
// afresh (pg_is_in_recovery) right before each fault.
package nemesis

import (
	"fmt"
	"github.com/strongcheck/strongcheck/internal/usererr"
	"slices"
	"strings"
	"time"
)

// ErrConfig is wrapped by every error in the user's nemesis flags
// (usererr).
var ErrConfig = usererr.Sentinel("invalid nemesis")

// Kinds of fault. A fault may take a target after a colon (see Parse).
const (
	KillPrimary       = "kill-primary"
	KillStandby       = "kill-standby"
	Restart           = "restart"
	Pause             = "pause"
	Partition         = "partition"
	CancelSyncWait    = "cancel-sync-wait"
	CrashWhileWaiting = "crash-while-waiting"
	CutThenKill       = "cut-then-kill"
	LagThenKill       = "lag-then-kill"
	StallCommit       = "stall-commit"
)

// LagRate is the bandwidth lag-then-kill leaves the links between nodes
// while the standbys fall behind.
const LagRate = "1mbit"

// Kinds lists every fault kind with what it does, for --help and errors.
var Kinds = []struct{ Name, Help string }{
	{KillPrimary, "SIGKILL the primary, then fail over as --failover says; rejoin it with pg_rewind at the end of the window"},
	{KillStandby, "SIGKILL a standby; restart it at the end of the window"},
	{Restart, "clean restart of a node (restart:primary, restart:standby or restart:NAME; default any)"},
	{Pause, "SIGSTOP every process of a node, SIGCONT at the end (pause:primary, pause:standby, pause:NAME; default any)"},
	{Partition, "cut nodes apart with nftables (partition:standby one standby from the primary, partition:primary the primary from both standbys, partition:halves; default one of them)"},
	{CancelSyncWait, "cut a standby off, then pg_cancel_backend the commits waiting for it (they become visible, even acknowledged)"},
	{CrashWhileWaiting, "cut a standby off, then SIGKILL and restart the primary while commits wait for it"},
	{CutThenKill, "cut a standby off, then kill the primary while it is cut off and fail over (cut-then-kill:cancel cancels the waiting commits first)"},
	{StallCommit, "SIGSTOP the primary's backends that wait for synchronous replication, so that their commits reach the standbys while the primary does not yet show them; SIGCONT at the end (local and k8s backends, not under a manager)"},
	{LagThenKill, "congest the links between nodes (" + LagRate + ") so standbys fall behind, kill the primary, lift the limit and fail over (needs a backend that shapes links: local)"},
}

// Fault is one parsed --nemesis entry.
type Fault struct {
	Kind   string
	Target string // "", primary, standby, halves, cancel, or a node name
}

func (f Fault) String() string {
	if f.Target == "" {
		return f.Kind
	}
	return f.Kind + ":" + f.Target
}

// Parse reads a comma list of faults ("all" for every kind, "none" or ""
// for none) and checks targets against nodes.
func Parse(s string, nodes []string) ([]Fault, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "none" {
		return nil, nil
	}
	var out []Fault
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "all" {
			for _, k := range Kinds {
				out = append(out, Fault{Kind: k.Name})
			}
			continue
		}
		kind, target, _ := strings.Cut(item, ":")
		f := Fault{Kind: kind, Target: target}
		if err := f.validate(nodes); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func (f Fault) validate(nodes []string) error {
	known := false
	var names []string
	for _, k := range Kinds {
		names = append(names, k.Name)
		known = known || k.Name == f.Kind
	}
	if !known {
		return fmt.Errorf("%w: unknown fault %q (known: %s, all)", ErrConfig, f.Kind, strings.Join(names, ", "))
	}
	t := f.Target
	switch f.Kind {
	case Restart, Pause:
		if t == "" || t == "primary" || t == "standby" || slices.Contains(nodes, t) {
			return nil
		}
		return fmt.Errorf("%w: %s:%s: target must be primary, standby or a node (%s)", ErrConfig, f.Kind, t, strings.Join(nodes, ", "))
	case Partition:
		if t == "" || t == "standby" || t == "primary" || t == "halves" {
			return nil
		}
		return fmt.Errorf("%w: partition:%s: want standby, primary or halves", ErrConfig, t)
	case CutThenKill:
		if t == "" || t == "cancel" {
			return nil
		}
		return fmt.Errorf("%w: cut-then-kill:%s: the only option is cancel", ErrConfig, t)
	}
	if t != "" {
		return fmt.Errorf("%w: %s takes no target", ErrConfig, f.Kind)
	}
	return nil
}

// Failover policies after a kill of the primary.
const (
	FailoverAuto     = "auto"     // promote the standby known to hold every acknowledged commit (or none), re-point, rejoin later
	FailoverNone     = "none"     // no promotion: restart the old primary at the end of the window
	FailoverExternal = "external" // something else promotes: wait for a new primary
	FailoverPromote  = "promote"  // promote:NAME, promote:lagging or promote:most-advanced
)

// Targets of promote: besides a node name.
const (
	// PromoteLagging is the least advanced standby: an operator's mistake.
	PromoteLagging = "lagging"
	// PromoteMostAdvanced is the standby with the greatest LSN, promoted
	// even when the sync list guarantees none holds every acknowledged
	// commit (asynchronous replication): what an operator without a
	// quorum rule does.
	PromoteMostAdvanced = "most-advanced"
)

// Policy is a parsed --failover.
type Policy struct {
	Mode string
	Node string // promote: a node name or "lagging"
}

func (p Policy) String() string {
	if p.Mode == FailoverPromote {
		return "promote:" + p.Node
	}
	return p.Mode
}

// ParsePolicy reads --failover: auto, none, external, promote:NAME,
// promote:lagging or promote:most-advanced.
func ParsePolicy(s string, nodes []string) (Policy, error) {
	mode, node, _ := strings.Cut(strings.TrimSpace(s), ":")
	switch mode {
	case "", FailoverAuto:
		return Policy{Mode: FailoverAuto}, nil
	case FailoverNone, FailoverExternal:
		if node != "" {
			return Policy{}, fmt.Errorf("%w: --failover %s takes no node", ErrConfig, mode)
		}
		return Policy{Mode: mode}, nil
	case FailoverPromote:
		if node == PromoteLagging || node == PromoteMostAdvanced || slices.Contains(nodes, node) {
			return Policy{Mode: mode, Node: node}, nil
		}
		return Policy{}, fmt.Errorf("%w: --failover promote:%s: no such node (nodes: %s, or lagging, most-advanced)", ErrConfig, node, strings.Join(nodes, ", "))
	}
	return Policy{}, fmt.Errorf("%w: --failover %q: want auto, none, external, promote:NAME, promote:lagging or promote:most-advanced", ErrConfig, s)
}

// Step is one planned fault: when it strikes (from the start of the run),
// how long its window lasts before the heal, and a random number that picks
// its target among the candidates found when it strikes.
type Step struct {
	At    time.Duration
	Fault Fault
	Hold  time.Duration
	Pick  uint32
}

func (s Step) String() string {
	return fmt.Sprintf("%6.1fs %-22s hold %.1fs pick %d", s.At.Seconds(), s.Fault, s.Hold.Seconds(), s.Pick)
}
