package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/strongcheck/strongcheck/results"
)

// RepairResult says what Repair did.
type RepairResult struct {
	Primary string
	Actions []string
	Sync    string
}

// Repair brings the cluster back to health after a run's faults: it
// resumes paused nodes, heals partitions, finds the primary (promoting the
// most advanced standby if there is none), rejoins every node that is down
// or does not stream from the primary (pg_rewind: a former primary, or a
// standby on a forked timeline), restores the original sync quorum over all
// standbys, and waits until every standby streams (in sync when the list
// asks) and has replayed the primary's WAL. hint is the primary as the
// harness knows it, used when two nodes claim the role.
func Repair(ctx context.Context, c Cluster, hint string) (RepairResult, error) {
	var res RepairResult
	primary, err := repairPrimary(ctx, c, hint, &res)
	if err != nil {
		return res, err
	}
	res.Primary = primary
	var standbys []string
	for _, n := range c.Nodes() {
		if n != primary {
			standbys = append(standbys, n)
		}
	}
	if err := rejoinStandbys(ctx, c, primary, standbys, &res); err != nil {
		return res, err
	}
	res.Sync = SyncFor(c.Spec().SyncStandbyNames(), standbys)
	if err := SetSyncStandbys(ctx, c, primary, res.Sync); err != nil {
		return res, fmt.Errorf("repair: sync list: %w", err)
	}
	// The caller's deadline bounds the catch-up: behind a slow link it
	// can take a while.
	if err := WaitStreaming(ctx, c, primary, standbys, res.Sync != ""); err != nil {
		return res, fmt.Errorf("repair: %w", err)
	}
	if err := WaitReplayed(ctx, c, primary, standbys); err != nil {
		return res, fmt.Errorf("repair: %w", err)
	}
	return res, nil
}

// repairPrimary resumes paused nodes, heals partitions and returns the
// primary: the one up, hint when two claim the role, else hint started
// again or the most advanced standby promoted.
func repairPrimary(ctx context.Context, c Cluster, hint string, res *RepairResult) (string, error) {
	for _, n := range c.Nodes() {
		if c.Status(n) == Paused {
			if err := c.Resume(ctx, n); err != nil {
				return "", fmt.Errorf("repair: resume %s: %w", n, err)
			}
			res.Actions = append(res.Actions, "resumed "+n)
		}
	}
	if err := c.Heal(ctx); err != nil {
		return "", fmt.Errorf("repair: heal: %w", err)
	}
	primary, err := FindPrimary(ctx, c)
	switch {
	case errors.Is(err, ErrSplitBrain):
		// Two primaries: keep the one the harness wrote to; the other is
		// rewound like any former primary.
		res.Actions = append(res.Actions, fmt.Sprintf("split brain (%v): keeping %s", err, hint))
		return hint, nil
	case errors.Is(err, ErrNoPrimary):
		down := 0
		for _, n := range c.Nodes() {
			if c.Status(n) == Down {
				down++
			}
		}
		if hint != "" && c.Status(hint) == Down {
			if err := c.Start(ctx, hint); err != nil {
				return "", fmt.Errorf("repair: start %s: %w", hint, err)
			}
			res.Actions = append(res.Actions, "started "+hint)
			primary, _ = FindPrimary(ctx, c)
		}
		if primary == "" {
			fo, ferr := Failover(ctx, c, hint, "")
			if ferr != nil {
				return "", fmt.Errorf("repair: no primary (%d down) and failover failed: %w", down, ferr)
			}
			primary = fo.New
			res.Actions = append(res.Actions, "promoted "+fo.New)
		}
		return primary, nil
	case err != nil:
		return "", fmt.Errorf("repair: %w", err)
	}
	return primary, nil
}

// rejoinStandbys makes every standby follow primary: a node that is down
// is rewound and started, one that streams from elsewhere re-pointed, and
// one that still does not stream after 30 s (its timeline forked before
// primary's) rewound, once.
func rejoinStandbys(ctx context.Context, c Cluster, primary string, standbys []string, res *RepairResult) error {
	for _, n := range standbys {
		if c.Status(n) == Down {
			if err := Rewind(ctx, c, n, primary); err != nil {
				return fmt.Errorf("repair: rejoin %s: %w", n, err)
			}
			res.Actions = append(res.Actions, "rejoined "+n)
			continue
		}
		if Follows(ctx, c, primary, n) {
			continue
		}
		// Up but not streaming from primary: pointed elsewhere, or still
		// catching up. Re-point it; the wait below tells which.
		if err := c.Follow(ctx, n, primary); err != nil {
			return fmt.Errorf("repair: re-point %s: %w", n, err)
		}
		res.Actions = append(res.Actions, "re-pointed "+n)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := WaitStreaming(wctx, c, primary, standbys, false)
	cancel()
	if err == nil {
		return nil
	}
	for _, n := range standbys {
		if Follows(ctx, c, primary, n) {
			continue
		}
		if rs, rerr := Replication(ctx, c, primary); rerr == nil && catchingUp(rs, n) {
			continue
		}
		if err := Rewind(ctx, c, n, primary); err != nil {
			return fmt.Errorf("repair: rejoin %s: %w", n, err)
		}
		res.Actions = append(res.Actions, "rewound "+n)
	}
	return nil
}

// catchingUp reports whether standby streams from the primary in catchup
// state (behind, but following).
func catchingUp(rs []results.ReplicationState, standby string) bool {
	for _, r := range rs {
		if r.Name == standby && r.State == "catchup" {
			return true
		}
	}
	return false
}
