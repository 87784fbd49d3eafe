package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/strongcheck/strongcheck/cluster/syncnames"
	"github.com/strongcheck/strongcheck/results"
)

// FailoverResult is what Failover did, for the history.
type FailoverResult struct {
	Old string // the primary that was lost
	New string // the standby promoted
	// Forced says New was chosen by the caller, not as the standby the
	// sync list guarantees to hold every acknowledged commit.
	Forced bool
	// Reason explains the choice in a sentence.
	Reason     string
	Candidates []results.NodeState // the standbys' state when the choice was made
	Sync       string              // synchronous_standby_names set on New
	// SwitchLSN is where New's history leaves the old primary's: the WAL
	// it had received when promoted. A standby that received more cannot
	// follow New.
	SwitchLSN string
	Followers []string // standbys re-pointed at New
	// Rewound are standbys that could not follow New (they had WAL New
	// never received: their timeline forked before its promotion) and were
	// rewound with pg_rewind, discarding that WAL.
	Rewound   []string
	Durations map[string]time.Duration
}

// FollowTimeout is how long Repoint waits for a re-pointed standby to
// stream from the new primary before it rewinds it, when the switch point
// is unknown.
var FollowTimeout = 5 * time.Second

// RejoinResult is what RejoinOld did, for the history.
type RejoinResult struct {
	Node      string
	Primary   string
	Sync      string // synchronous_standby_names restored on Primary
	Durations map[string]time.Duration
}

// Failover replaces the lost primary old: Promote (the standby the spec's
// sync list guarantees to hold every acknowledged commit, or force when it
// is not empty), then Repoint. The old primary is left alone: call RejoinOld
// once it may come back.
func Failover(ctx context.Context, c Cluster, old, force string) (FailoverResult, error) {
	res, err := Promote(ctx, c, PromoteOptions{Old: old, Force: force})
	if err != nil {
		return res, err
	}
	t := time.Now()
	res.Followers, res.Rewound, err = Repoint(ctx, c, old, res.New, res.SwitchLSN, res.Followers)
	res.Durations["follow"] = time.Since(t)
	res.Durations["total"] += res.Durations["follow"]
	return res, err
}

// PromoteOptions say which standby Promote may promote.
type PromoteOptions struct {
	// Old is the lost primary.
	Old string
	// Force names the standby to promote whatever it holds (an
	// operator's choice to reproduce); MostAdvanced promotes the most
	// advanced reachable standby even when the sync list guarantees none
	// holds every acknowledged commit. Both make the result Forced.
	Force        string
	MostAdvanced bool
	// Sync is the synchronous_standby_names the old primary ran with; nil
	// means the spec's initial list.
	Sync *syncnames.Names
}

// ErrNoSafeStandby is returned by Promote when the sync list guarantees no
// reachable standby to hold every acknowledged commit: promoting one could
// lose acknowledged writes, so Promote promotes none.
var ErrNoSafeStandby = errors.New("no standby is known to hold every acknowledged commit")

// Promote promotes a standby in place of the lost primary o.Old and sets
// its sync list to the original one over the standbys that remain, so RPO
// stays 0 with them; the new primary takes writes when Promote returns.
// Without Force or MostAdvanced it promotes only a standby that the old
// primary's sync list guarantees to hold every acknowledged commit (see
// SafeCandidate) and returns ErrNoSafeStandby, promoting nothing, when no
// such standby can be known.
func Promote(ctx context.Context, c Cluster, o PromoteOptions) (FailoverResult, error) {
	res := FailoverResult{Old: o.Old, Durations: map[string]time.Duration{}}
	t0 := time.Now()
	standbys := others(c.Nodes(), o.Old)
	for _, s := range NodeStates(ctx, c) {
		if s.Node != o.Old {
			res.Candidates = append(res.Candidates, s)
		}
	}
	list := o.Sync
	if list == nil {
		s, err := ParseSyncNames(c.Spec().SyncStandbyNames())
		if err != nil {
			return res, fmt.Errorf("failover from %s: %w", o.Old, err)
		}
		list = &s
	}
	safe, reason, safeErr := SafeCandidate(*list, c.Spec().Effective()["synchronous_commit"], standbys, res.Candidates)
	res.Reason = reason
	res.Durations["choose"] = time.Since(t0)
	best := safe
	switch {
	case o.Force != "":
		best = o.Force
	case o.MostAdvanced:
		best = mostAdvanced(res.Candidates)
	case safeErr != nil:
		return res, fmt.Errorf("failover from %s: %w", o.Old, safeErr)
	}
	if best != safe {
		res.Forced = true
		why := reason
		if safeErr != nil {
			why = safeErr.Error()
		}
		res.Reason = fmt.Sprintf("%s chosen by the failover policy, not as the standby known to hold every acknowledged commit (%s)", best, why)
	}
	if best == "" {
		return res, fmt.Errorf("failover from %s: no reachable standby to promote (%s)", o.Old, describeStates(res.Candidates))
	}
	res.New = best
	for _, s := range res.Candidates {
		if s.Node == best {
			res.SwitchLSN = s.ReceiveLSN
			if res.SwitchLSN == "" {
				res.SwitchLSN = s.ReplayLSN
			}
		}
	}
	res.Sync = list.Over(others(c.Nodes(), o.Old, best)).String()
	// The promotion and what readies the others for it run at once: each
	// is safe in either order (see prepareSwitch), and each opens its own
	// connections, which on a busy machine cost as much as the promotion.
	t1 := time.Now()
	var prepErr error
	var prepTook time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		prepErr = prepareSwitch(ctx, c, o.Old, &res)
		prepTook = time.Since(t1)
	})
	err := PromoteNode(ctx, c, best)
	res.Durations["promote"] = time.Since(t1)
	wg.Wait()
	res.Durations["prepare"] = prepTook
	res.Durations["total"] = time.Since(t0)
	if err != nil {
		return res, fmt.Errorf("failover from %s: %w", o.Old, err)
	}
	if prepErr != nil {
		return res, fmt.Errorf("failover from %s: %w", o.Old, prepErr)
	}
	return res, nil
}

// prepareSwitch readies the cluster for res.New's promotion, while
// PromoteNode runs: it sets res.Sync on res.New, and points every other
// running standby that does not hold WAL beyond res.SwitchLSN at res.New.
// Either order is safe. A sync list set before the promotion is ignored
// until res.New is a primary; one set after it leaves res.New's first
// commits waiting under the old list, which names res.New itself and so
// acknowledges nothing until the new list arrives. A standby pointed at
// res.New before its promotion streams from it as a cascading standby and
// goes on across the promotion, following the new timeline without
// reconnecting; one pointed after it connects to the new primary. Setting
// the list and pointing the standbys run at once, on different nodes.
// The standbys it pointed are res.Followers; Repoint handles the others.
func prepareSwitch(ctx context.Context, c Cluster, old string, res *FailoverResult) error {
	sw, swErr := ParseLSN(res.SwitchLSN)
	var cands []string
	for _, s := range res.Candidates {
		if s.Node != res.New && s.Node != old && s.Role == string(Standby) && c.Status(s.Node) == Unknown && swErr == nil {
			cands = append(cands, s.Node)
		}
	}
	errs := make([]error, len(cands)+1)
	pointed := make([]bool, len(cands))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := SetSyncStandbys(ctx, c, res.New, res.Sync); err != nil {
			errs[0] = fmt.Errorf("set sync list on %s: %w", res.New, err)
		}
	})
	for i, n := range cands {
		wg.Go(func() {
			// Asked afresh, not from the candidates' states: WAL still in
			// flight when the primary died (a congested link's queue)
			// may have reached it since. One ahead of the new primary
			// cannot follow it; Repoint rewinds it after the promotion.
			if ahead, err := aheadOf(ctx, c, n, 0, sw); err != nil || ahead {
				return
			}
			if err := c.Follow(ctx, n, res.New); err != nil {
				errs[i+1] = fmt.Errorf("point %s at %s: %w", n, res.New, err)
				return
			}
			pointed[i] = true
		})
	}
	wg.Wait()
	for i, n := range cands {
		if pointed[i] {
			res.Followers = append(res.Followers, n)
		}
	}
	return errors.Join(errs...)
}

// aheadOf reports whether standby node holds WAL beyond sw (received or
// replayed) on a timeline older than tl (0: any): such a standby cannot
// follow a primary whose timeline forked at sw.
func aheadOf(ctx context.Context, c Cluster, node string, tl int, sw uint64) (bool, error) {
	st, err := QueryState(ctx, c.ConnString(node, true))
	if err != nil {
		return false, err
	}
	lsn, ok := standbyLSN(st)
	return ok && lsn > sw && (tl == 0 || st.Timeline < tl), nil
}

// SafeCandidate chooses, among the states of the old primary's standbys,
// the one that sync guarantees to hold every acknowledged commit. A commit
// was acknowledged once Num of the eligible standbys (FIRST: the Num
// synchronous ones at that moment, all of them eligible) had it, so when
// more than (eligible - Num) eligible standbys can be asked, one of those
// asked has every acknowledged commit, and the most advanced of them (the
// greater of its receive and replay LSN, among the standbys on the newest
// timeline) has them all. With asynchronous replication (an empty list, or
// synchronous_commit local or off, which acknowledge before any standby
// has the commit), or too few eligible standbys reachable, no standby can
// be known: the error says why. reason explains the choice in a sentence
// either way.
func SafeCandidate(sync syncnames.Names, syncCommit string, standbys []string, states []results.NodeState) (best, reason string, err error) {
	switch sc := strings.ToLower(strings.Trim(strings.TrimSpace(syncCommit), "'")); sc {
	case "local", "off":
		return "", "", fmt.Errorf("%w: synchronous_commit=%s acknowledges a commit before any standby has it", ErrNoSafeStandby, sc)
	}
	if sync.Async() {
		return "", "", fmt.Errorf("%w: replication is asynchronous (synchronous_standby_names is empty), so a commit was acknowledged before any standby had it", ErrNoSafeStandby)
	}
	eligible := sync.EligibleAmong(standbys)
	k := min(sync.Num, len(eligible))
	if k == 0 {
		return "", "", fmt.Errorf("%w: none of %s is named by synchronous_standby_names %q", ErrNoSafeStandby, strings.Join(standbys, ", "), sync)
	}
	byTL := map[int][]results.NodeState{}
	newest := 0
	for _, s := range states {
		if s.Role != string(Standby) || !slices.Contains(eligible, s.Node) {
			continue
		}
		if _, ok := standbyLSN(s); !ok {
			continue
		}
		byTL[s.Timeline] = append(byTL[s.Timeline], s)
		newest = max(newest, s.Timeline)
	}
	asked := byTL[newest]
	if len(asked) <= len(eligible)-k {
		var names []string
		for _, s := range asked {
			names = append(names, s.Node)
		}
		return "", "", fmt.Errorf("%w: with %q a commit was acknowledged once %d of %s had it, and only %d of them (%s) could be asked on timeline %d",
			ErrNoSafeStandby, sync, k, strings.Join(eligible, ", "), len(asked), strings.Join(names, ", "), newest)
	}
	var bestLSN uint64
	for _, s := range asked {
		if lsn, _ := standbyLSN(s); best == "" || lsn > bestLSN {
			best, bestLSN = s.Node, lsn
		}
	}
	reason = fmt.Sprintf("with %q every acknowledged commit is on %d of %s; %d of them answered on timeline %d and %s is the most advanced (%s)",
		sync, k, strings.Join(eligible, ", "), len(asked), newest, best, FormatLSN(bestLSN))
	return best, reason, nil
}

// standbyLSN is the greater of a standby's receive and replay LSN.
func standbyLSN(s results.NodeState) (uint64, bool) {
	recv, err1 := ParseLSN(s.ReceiveLSN)
	replay, err2 := ParseLSN(s.ReplayLSN)
	if err1 != nil && err2 != nil {
		return 0, false
	}
	return max(recv, replay), true
}

// mostAdvanced is the reachable standby with the greatest LSN, whatever the
// sync list says.
func mostAdvanced(states []results.NodeState) string {
	best, bestLSN := "", uint64(0)
	for _, s := range states {
		if s.Role != string(Standby) {
			continue
		}
		if lsn, ok := standbyLSN(s); ok && (best == "" || lsn > bestLSN) {
			best, bestLSN = s.Node, lsn
		}
	}
	return best
}

// Repoint points every reachable standby but old and those in pointed
// (already streaming from primary: Promote's Followers) at primary. A standby
// that had received WAL beyond switchLSN (the WAL primary had when it was
// promoted) cannot follow it: its timeline forked earlier. It is rewound
// with pg_rewind, which discards that WAL. Others are re-pointed at once
// and catch up on their own. With an unknown switchLSN ("") a standby that
// does not stream within FollowTimeout is rewound.
func Repoint(ctx context.Context, c Cluster, old, primary, switchLSN string, pointed []string) (followers, rewound []string, err error) {
	var errs []string
	sw, swErr := ParseLSN(switchLSN)
	for _, n := range others(c.Nodes(), old, primary) {
		if c.Status(n) != Unknown {
			continue // down or paused: the settle step re-points it
		}
		follows, err := repointOne(ctx, c, n, primary, sw, swErr, slices.Contains(pointed, n))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", n, err))
			continue
		}
		if !follows {
			if rerr := Rewind(ctx, c, n, primary); rerr != nil {
				errs = append(errs, fmt.Sprintf("%s cannot follow %s and rewind failed: %v", n, primary, rerr))
				continue
			}
			rewound = append(rewound, n)
		}
		followers = append(followers, n)
	}
	if len(errs) > 0 {
		return followers, rewound, fmt.Errorf("re-point at %s: %s", primary, strings.Join(errs, "; "))
	}
	return followers, rewound, nil
}

// repointOne points standby n at primary, unless pointed says Promote
// already did, and reports whether it follows without a rewind. One that
// holds WAL beyond the switch point sw does not. One pointed before the
// promotion, or when sw is unknown, is given FollowTimeout to stream: a
// pointed one that does not and turns out to hold WAL beyond sw on an
// older timeline (WAL that reached it after it was asked) does not follow
// either; one that is merely slow catches up on its own.
func repointOne(ctx context.Context, c Cluster, n, primary string, sw uint64, swErr error, pointed bool) (bool, error) {
	if !pointed {
		if swErr == nil {
			if ahead, _ := aheadOf(ctx, c, n, 0, sw); ahead {
				return false, nil
			}
		}
		if err := c.Follow(ctx, n, primary); err != nil {
			return false, err
		}
		if swErr == nil {
			return true, nil
		}
	}
	wctx, cancel := context.WithTimeout(ctx, FollowTimeout)
	werr := WaitStreaming(wctx, c, primary, []string{n}, false)
	cancel()
	if werr == nil {
		return true, nil
	}
	if !pointed || swErr != nil {
		return false, nil
	}
	ps, err := QueryState(ctx, c.ConnString(primary, true))
	if err != nil {
		return true, nil // cannot tell: leave it to catch up, as before
	}
	ahead, _ := aheadOf(ctx, c, n, ps.Timeline, sw)
	return !ahead, nil
}

func others(nodes []string, except ...string) []string {
	var out []string
	for _, n := range nodes {
		skip := false
		for _, e := range except {
			skip = skip || n == e
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// Rewind makes node a standby of primary with the backend's Rejoin
// (pg_rewind), after a CHECKPOINT on primary: pg_rewind reads the source's
// timeline from its control file, which a freshly promoted node updates
// only at its first checkpoint; without it pg_rewind says "no rewind
// required" and the node stays on the old timeline, unable to follow.
func Rewind(ctx context.Context, c Cluster, node, primary string) error {
	if err := Checkpoint(ctx, c, primary); err != nil {
		return fmt.Errorf("rewind %s: checkpoint on %s: %w", node, primary, err)
	}
	return c.Rejoin(ctx, node, primary)
}

// RejoinOld brings a former primary back as a standby of primary with
// pg_rewind, waits until it streams, and restores the original sync quorum on
// primary over all its standbys.
func RejoinOld(ctx context.Context, c Cluster, node, primary string) (RejoinResult, error) {
	res := RejoinResult{Node: node, Primary: primary, Durations: map[string]time.Duration{}}
	t0 := time.Now()
	if err := Rewind(ctx, c, node, primary); err != nil {
		return res, err
	}
	res.Durations["rewind"] = time.Since(t0)
	t2 := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := WaitStreaming(wctx, c, primary, []string{node}, false); err != nil {
		return res, fmt.Errorf("rejoin %s: %w", node, err)
	}
	res.Durations["stream"] = time.Since(t2)
	var standbys []string
	for _, n := range c.Nodes() {
		if n != primary {
			standbys = append(standbys, n)
		}
	}
	res.Sync = SyncFor(c.Spec().SyncStandbyNames(), standbys)
	if err := SetSyncStandbys(ctx, c, primary, res.Sync); err != nil {
		return res, fmt.Errorf("rejoin %s: restore sync list on %s: %w", node, primary, err)
	}
	res.Durations["total"] = time.Since(t0)
	return res, nil
}

func describeStates(ss []results.NodeState) string {
	var parts []string
	for _, s := range ss {
		p := s.Node + "=" + s.Role
		if s.Error != "" {
			p += " (" + s.Error + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}
