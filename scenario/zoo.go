package scenario

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/harness/config"
	"github.com/strongcheck/strongcheck/internal/usererr"
)

// Test builds the harness.Test of s for one run: its flags as
// `strongcheck test --scenario` would parse them, with seed, the store
// folder and, when timeLimit > 0, that time limit (never below
// s.MinTimeLimit). Version and Command are the caller's to set.
func (s Scenario) Test(store string, seed int64, timeLimit time.Duration) (harness.Test, error) {
	args := append(append([]string(nil), s.Args...), "--name", s.Name, "--store", store, "--seed", fmt.Sprint(seed))
	if timeLimit > 0 {
		// A manager's failover needs its own time; never less.
		args = append(args, "--time-limit", max(timeLimit, s.MinTimeLimit).String())
	}
	_, t, err := config.Parse(args)
	if err != nil {
		return harness.Test{}, fmt.Errorf("scenario %s: %w", s.Name, err)
	}
	return t, nil
}

// Zoo is a run of scenarios, each Runs times.
type Zoo struct {
	Scenarios []Scenario
	Runs      int
	Store     string
	// FirstSeed is the seed of the first run; run i uses FirstSeed+i.
	FirstSeed int64
	// TimeLimit, when > 0, overrides every scenario's (Scenario.Test).
	TimeLimit time.Duration
	// Backend builds the clusters.
	Backend harness.Backend
	// Version and Command are recorded in each run's test.json.
	Version string
	Command []string
	// Log, when set, receives one line per run: its outcome and folder.
	Log func(line string)
}

// Tally is one scenario's count in a zoo.
type Tally struct {
	Scenario Scenario
	Runs     int
	// Found counts the runs that were exactly as the scenario says.
	Found  int
	Errors int
	// Firsts are the times to the first anomaly of the runs that found
	// their scenario's own.
	Firsts []time.Duration
	// Misses say why the runs that were not as expected were not.
	Misses []string
}

// Met reports whether the scenario met its bar: as expected in at least
// 95 % of its runs when it must find an anomaly, in every run when it must
// stay valid (an anomaly there is a finding, never a flake).
func (t *Tally) Met() bool {
	need := (t.Runs*95 + 99) / 100
	if t.Scenario.Expect == checker.Valid {
		need = t.Runs
	}
	return t.Found >= need
}

// MedianFirst is the median time to the first anomaly, and false when no
// run found one.
func (t *Tally) MedianFirst() (time.Duration, bool) {
	if len(t.Firsts) == 0 {
		return 0, false
	}
	s := slices.Clone(t.Firsts)
	slices.Sort(s)
	return s[len(s)/2], true
}

// Run runs the zoo: round after round (run 1 of each scenario, then run 2
// ...) so that a zoo cut short still covers every scenario. It returns the
// tallies so far with the error that stopped it: a scenario whose flags
// the harness refuses, a run that could not start, or ctx's end.
func (z Zoo) Run(ctx context.Context) ([]*Tally, error) {
	if err := z.Validate(); err != nil {
		return nil, err
	}
	tallies := make([]*Tally, len(z.Scenarios))
	for i, s := range z.Scenarios {
		tallies[i] = &Tally{Scenario: s}
	}
	for i := 0; i < z.Runs; i++ {
		for _, row := range tallies {
			if err := z.runOnce(ctx, row, i); err != nil {
				return tallies, err
			}
			if err := ctx.Err(); err != nil {
				return tallies, err
			}
		}
	}
	return tallies, nil
}

// Validate refuses a zoo that cannot run; the errors are the user's.
func (z Zoo) Validate() error {
	if z.FirstSeed == 0 {
		return usererr.New("--seed 0 is reserved; give another")
	}
	if z.Runs < 1 {
		return usererr.New("--runs %d: must be at least 1", z.Runs)
	}
	return nil
}

// runOnce runs round i of row's scenario and counts it.
func (z Zoo) runOnce(ctx context.Context, row *Tally, i int) error {
	s := row.Scenario
	t, err := s.Test(z.Store, z.FirstSeed+int64(i), z.TimeLimit)
	if err != nil {
		return err
	}
	t.Version, t.Command = z.Version, z.Command
	out, err := harness.Run(ctx, t, z.Backend)
	if err != nil {
		return err
	}
	row.Runs++
	var status string
	if out.Err != nil || out.Result == nil {
		row.Errors++
		z.log("%s run %d: error: %v", s.Name, i+1, out.Err)
		status = "error"
	} else if ok, why := s.Check(out.Result); ok {
		row.Found++
		status = "as expected: " + out.Result.ModelsLine()
		if why != "" { // a tolerated PostgreSQL bug: said, and not the scenario's finding
			status = "as expected (" + why + "): " + out.Result.ModelsLine()
		} else if ns := FirstAnomalyNS(out.Result); ns >= 0 {
			row.Firsts = append(row.Firsts, time.Duration(ns))
		}
	} else {
		status = "NOT as expected: " + why
		row.Misses = append(row.Misses, why)
	}
	z.log("%s run %d/%d: %s  %s", s.Name, i+1, z.Runs, status, out.Run.Dir)
	return nil
}

func (z Zoo) log(format string, args ...any) {
	if z.Log != nil {
		z.Log(fmt.Sprintf(format, args...))
	}
}
