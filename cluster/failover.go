package cluster

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// FailoverResult is what Failover did, for the history.
type FailoverResult struct {
	Old        string              // the primary that was lost
	New        string              // the standby promoted
	Forced     bool                // New was chosen by the caller, not by LSN
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

// Failover replaces the lost primary old: Promote, then Repoint. The old
// primary is left alone: call RejoinOld once it may come back.
func Failover(ctx context.Context, c Cluster, old, force string) (FailoverResult, error) {
	res, err := Promote(ctx, c, old, force)
	if err != nil {
		return res, err
	}
	t := time.Now()
	res.Followers, res.Rewound, err = Repoint(ctx, c, old, res.New, res.SwitchLSN)
	res.Durations["follow"] = time.Since(t)
	res.Durations["total"] += res.Durations["follow"]
	return res, err
}

// Promote promotes the standby with the highest received LSN (or force,
// when not empty, whatever its LSN: an operator's mistake to reproduce) in
// place of the lost primary old, and sets its sync list to the original
// quorum capped by the standbys that remain, so RPO stays 0 with them. The
// new primary takes writes when Promote returns.
func Promote(ctx context.Context, c Cluster, old, force string) (FailoverResult, error) {
	res := FailoverResult{Old: old, Durations: map[string]time.Duration{}}
	t0 := time.Now()
	var best string
	var bestLSN uint64
	for _, s := range NodeStates(ctx, c) {
		if s.Node == old {
			continue
		}
		res.Candidates = append(res.Candidates, s)
		if s.Role != string(Standby) {
			continue
		}
		lsn, err := ParseLSN(s.ReceiveLSN)
		if err != nil {
			lsn, _ = ParseLSN(s.ReplayLSN)
		}
		if best == "" || lsn > bestLSN {
			best, bestLSN = s.Node, lsn
		}
	}
	res.Durations["choose"] = time.Since(t0)
	if force != "" {
		best, res.Forced = force, true
	}
	if best == "" {
		return res, fmt.Errorf("failover from %s: no reachable standby to promote (%s)", old, describeStates(res.Candidates))
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
	t1 := time.Now()
	if err := PromoteNode(ctx, c, best); err != nil {
		return res, fmt.Errorf("failover from %s: %w", old, err)
	}
	res.Durations["promote"] = time.Since(t1)
	res.Sync = SyncFor(c.Spec().SyncStandbyNames(), others(c.Nodes(), old, best))
	t2 := time.Now()
	if err := SetSyncStandbys(ctx, c, best, res.Sync); err != nil {
		return res, fmt.Errorf("failover from %s: set sync list on %s: %w", old, best, err)
	}
	res.Durations["sync"] = time.Since(t2)
	res.Durations["total"] = time.Since(t0)
	return res, nil
}

// Repoint points every reachable standby but old at primary. A standby
// that had received WAL beyond switchLSN (the WAL primary had when it was
// promoted) cannot follow it: its timeline forked earlier. It is rewound
// with pg_rewind, which discards that WAL. Others are re-pointed at once
// and catch up on their own. With an unknown switchLSN ("") a standby that
// does not stream within FollowTimeout is rewound.
func Repoint(ctx context.Context, c Cluster, old, primary, switchLSN string) (followers, rewound []string, err error) {
	var errs []string
	sw, swErr := ParseLSN(switchLSN)
	for _, n := range others(c.Nodes(), old, primary) {
		if c.Status(n) != Unknown {
			continue // down or paused: the settle step re-points it
		}
		ahead := false
		if swErr == nil {
			if st, err := QueryState(ctx, c.ConnString(n, true)); err == nil {
				if lsn, err := ParseLSN(st.ReceiveLSN); err == nil && lsn > sw {
					ahead = true
				}
			}
		}
		if !ahead {
			if err := c.Follow(ctx, n, primary); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", n, err))
				continue
			}
			if swErr == nil {
				followers = append(followers, n)
				continue
			}
			wctx, cancel := context.WithTimeout(ctx, FollowTimeout)
			werr := WaitStreaming(wctx, c, primary, []string{n}, false)
			cancel()
			if werr == nil {
				followers = append(followers, n)
				continue
			}
		}
		if rerr := Rewind(ctx, c, n, primary); rerr != nil {
			errs = append(errs, fmt.Sprintf("%s cannot follow %s and rewind failed: %v", n, primary, rerr))
			continue
		}
		rewound = append(rewound, n)
		followers = append(followers, n)
	}
	if len(errs) > 0 {
		return followers, rewound, fmt.Errorf("re-point at %s: %s", primary, strings.Join(errs, "; "))
	}
	return followers, rewound, nil
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

var syncNumRe = regexp.MustCompile(`(?i)^\s*(ANY|FIRST)?\s*(\d+)\s*\(`)

// SyncFor keeps the shape of the original synchronous_standby_names (ANY or
// FIRST, and its count) over a new set of standbys, capping the count at
// their number. An empty original stays empty (asynchronous replication is
// what the user asked to test); with no standbys the result is empty.
func SyncFor(original string, standbys []string) string {
	original = strings.TrimSpace(original)
	if original == "" || len(standbys) == 0 {
		return ""
	}
	method, k := "FIRST", 1
	if m := syncNumRe.FindStringSubmatch(original); m != nil {
		if m[1] != "" {
			method = strings.ToUpper(m[1])
		}
		k, _ = strconv.Atoi(m[2])
	}
	if k > len(standbys) {
		k = len(standbys)
	}
	return fmt.Sprintf("%s %d (%s)", method, k, strings.Join(standbys, ", "))
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
