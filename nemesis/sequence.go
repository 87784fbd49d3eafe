package nemesis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// KindSequence is the fault kind of a user-written sequence of steps.
const KindSequence = "sequence"

// SeqStep is one step of a user-written fault sequence: Verb and its
// arguments (node names, "primary", "standby", or a duration for wait).
type SeqStep struct {
	Verb string
	Args []string
	Wait time.Duration // wait only
}

func (s SeqStep) String() string { return strings.TrimSpace(s.Verb + " " + strings.Join(s.Args, " ")) }

// Sequence is a user-written fault sequence, run once in order.
type Sequence []SeqStep

func (q Sequence) String() string {
	parts := make([]string, len(q))
	for i, s := range q {
		parts[i] = s.String()
	}
	return strings.Join(parts, "; ")
}

// SequenceVerbs documents the steps a sequence may hold, for --help.
var SequenceVerbs = []struct{ Verb, Help string }{
	{"partition A [B ...]", "cut A off from B ... (from every other node when none is named), both directions"},
	{"heal", "remove every cut"},
	{"kill NODE", "SIGKILL NODE's server (it stays down)"},
	{"crash NODE", "SIGKILL NODE's server and start it again at once (crash recovery)"},
	{"stop NODE / start NODE", "clean shutdown / start of NODE"},
	{"pause NODE / resume NODE", "SIGSTOP / SIGCONT every server process of NODE"},
	{"cancel-sync-wait", "pg_cancel_backend every commit of the primary waiting for a standby"},
	{"promote [NODE|most-advanced]", "promote NODE (default: the standby known to hold every acknowledged commit) in place of the dead primary, re-point the others"},
	{"rejoin NODE", "pg_rewind NODE (a former primary) and make it a standby of the primary"},
	{"wait DURATION", "do nothing for DURATION (e.g. 2s)"},
}

// ParseSequence reads a fault sequence: steps separated by ';' or new
// lines, '#' starting a comment. NODE is a node name, primary or standby
// (the current primary, or a standby chosen by the seed, when the step runs).
func ParseSequence(s string, nodes []string) (Sequence, error) {
	var out Sequence
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		for _, item := range strings.Split(line, ";") {
			f := strings.Fields(item)
			if len(f) == 0 {
				continue
			}
			st, err := parseStep(f, nodes)
			if err != nil {
				return nil, fmt.Errorf("%w: sequence step %q: %w", ErrConfig, strings.Join(f, " "), err)
			}
			out = append(out, st)
		}
	}
	if len(out) == 0 && strings.TrimSpace(s) != "" {
		return nil, fmt.Errorf("%w: the sequence has no step", ErrConfig)
	}
	return out, nil
}

func parseStep(f []string, nodes []string) (SeqStep, error) {
	st := SeqStep{Verb: strings.ToLower(f[0]), Args: f[1:]}
	isNode := func(a string) bool { return a == "primary" || a == "standby" || slices.Contains(nodes, a) }
	wantNodes := func(lo, hi int) error {
		if len(st.Args) < lo || len(st.Args) > hi {
			return fmt.Errorf("takes %d to %d node(s), got %d", lo, hi, len(st.Args))
		}
		for _, a := range st.Args {
			if !isNode(a) {
				return fmt.Errorf("%q is not primary, standby or a node (%s)", a, strings.Join(nodes, ", "))
			}
		}
		return nil
	}
	switch st.Verb {
	case "partition", "cut":
		st.Verb = "partition"
		return st, wantNodes(1, len(nodes))
	case "heal", "cancel-sync-wait":
		return st, wantNodes(0, 0)
	case "kill", "crash", "stop", "start", "pause", "resume", "rejoin":
		return st, wantNodes(1, 1)
	case "promote":
		if len(st.Args) == 1 && st.Args[0] == PromoteMostAdvanced {
			return st, nil
		}
		return st, wantNodes(0, 1)
	case "wait":
		if len(st.Args) != 1 {
			return st, fmt.Errorf("wait takes one duration")
		}
		d, err := time.ParseDuration(st.Args[0])
		if err != nil || d < 0 {
			return st, fmt.Errorf("wait %q: want a duration such as 2s", st.Args[0])
		}
		st.Wait = d
		return st, nil
	}
	var verbs []string
	for _, v := range SequenceVerbs {
		verbs = append(verbs, strings.Fields(v.Verb)[0])
	}
	return st, fmt.Errorf("unknown step (known: %s, start, resume)", strings.Join(verbs, ", "))
}

// runSequence runs the user's steps in one window: the first step opens
// it, the others are its steps, and an "end" step closes it. A step that
// fails is recorded and the sequence goes on: the user asked for every
// step, and the verdict says which did not happen. What the sequence
// leaves broken, the settle step repairs.
func (n *Nemesis) runSequence(ctx context.Context, w *window, st Step) error {
	hctx := context.WithoutCancel(ctx)
	for i, s := range n.cfg.Sequence {
		phase := results.PhaseStep
		if i == 0 {
			phase = results.PhaseStart
		}
		n.setNow(fmt.Sprintf("sequence step %d/%d: %s", i+1, len(n.cfg.Sequence), s))
		var primary string
		var standbys, targets []string
		if s.Verb != "wait" {
			primary, standbys = n.roles(hctx)
			targets = n.resolve(s.Args, primary, standbys, st.Pick+uint32(i))
		}
		if _, err := n.record(ctx, w, s.Verb, phase, targets, func(f *results.Fault) error {
			f.Detail = "sequence step: " + s.String()
			if s.Verb == "wait" {
				hold(ctx, s.Wait) // the time limit cuts a wait short
				return nil
			}
			return n.seqStep(hctx, w, f, s, targets, primary, standbys)
		}); err != nil {
			return err
		}
	}
	_, err := n.record(ctx, w, "end", results.PhaseStop, nil, func(f *results.Fault) error {
		f.Detail = fmt.Sprintf("end of the %d-step sequence", len(n.cfg.Sequence))
		return nil
	})
	return err
}

// resolve turns primary and standby into node names.
func (n *Nemesis) resolve(args []string, primary string, standbys []string, p uint32) []string {
	var out []string
	for _, a := range args {
		switch a {
		case "primary":
			a = primary
		case "standby":
			a = pick(standbys, p)
		}
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// seqStep performs and verifies one sequence step on targets.
func (n *Nemesis) seqStep(ctx context.Context, w *window, f *results.Fault, s SeqStep, targets []string, primary string, standbys []string) error {
	if len(targets) < len(s.Args) {
		return fmt.Errorf("%w: %s: no such node now (primary %q, standbys %v)", ErrNotVerified, s, primary, standbys)
	}
	switch s.Verb {
	case "partition":
		return n.cut(ctx, f, seqGrudge(targets, n.c.Nodes()))
	case "heal":
		return n.heal(ctx, f)
	case "kill":
		return n.kill(ctx, f, targets[0])
	case "crash":
		if err := n.kill(ctx, f, targets[0]); err != nil {
			return err
		}
		return n.start(ctx, f, targets[0])
	case "stop":
		if err := n.c.Stop(ctx, targets[0]); err != nil {
			return err
		}
		return n.verifyDown(ctx, f, targets[0])
	case "start":
		return n.start(ctx, f, targets[0])
	case "pause":
		if err := n.c.Pause(ctx, targets[0]); err != nil {
			return err
		}
		return n.verifyFrozen(ctx, f, targets[0])
	case "resume":
		if err := n.c.Resume(ctx, targets[0]); err != nil {
			return err
		}
		return n.verifyThawed(ctx, f, targets[0])
	case "cancel-sync-wait":
		if primary == "" {
			return fmt.Errorf("%w: no primary whose waiting commits to cancel", ErrNotVerified)
		}
		return n.cancelWaiters(ctx, f, primary)
	case "promote":
		return n.seqPromote(ctx, w, f, s, targets)
	case "rejoin":
		p := n.topo.Primary()
		res, err := cluster.RejoinOld(ctx, n.c, targets[0], p)
		f.Primary, f.Durations = p, durs(res.Durations)
		if err != nil {
			return err
		}
		return n.verifyStandbyOf(ctx, f, targets[0], p)
	}
	return fmt.Errorf("%w: unknown step %q", ErrConfig, s.Verb)
}

// seqPromote promotes as a sequence's promote step says, in place of the
// primary the harness last wrote to, which must be down.
func (n *Nemesis) seqPromote(ctx context.Context, w *window, f *results.Fault, s SeqStep, targets []string) error {
	old := n.topo.Primary()
	if err := n.verifyDown(ctx, f, old); err != nil {
		return fmt.Errorf("not promoting while %s may still take writes: %w", old, err)
	}
	o := cluster.PromoteOptions{Old: old}
	switch {
	case len(s.Args) == 1 && s.Args[0] == PromoteMostAdvanced:
		o.MostAdvanced = true
	case len(targets) == 1:
		o.Force = targets[0]
	}
	res, err := cluster.Promote(ctx, n.c, o)
	f.Primary, f.Durations, f.Forced = res.New, durs(res.Durations), res.Forced
	f.Detail += fmt.Sprintf("; %s; sync list %q", res.Reason, res.Sync)
	if err != nil {
		return err
	}
	if err := n.verifyPromoted(ctx, f, res.New); err != nil {
		return err
	}
	n.switchClients(w, res.New)
	followers, rewound, err := cluster.Repoint(ctx, n.c, old, res.New, res.SwitchLSN, res.Followers)
	f.Detail += fmt.Sprintf("; re-pointed %v (rewound %v)", followers, rewound)
	return err
}

// seqGrudge cuts targets[0] from targets[1:], or from every other node.
func seqGrudge(targets, nodes []string) cluster.Grudge {
	lone, peers := targets[0], targets[1:]
	if len(peers) == 0 {
		for _, x := range nodes {
			if x != lone {
				peers = append(peers, x)
			}
		}
	}
	return cluster.Grudge{lone: peers}
}
