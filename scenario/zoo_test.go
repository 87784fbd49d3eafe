package scenario

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/internal/usererr"
)

// Every scenario's flags make a test the harness accepts, seeded, named
// and stored as the zoo asks, with a time limit never below its minimum.
func TestEveryScenarioMakesATest(t *testing.T) {
	for _, s := range All {
		tt, err := s.Test("/tmp/store", 42, time.Second)
		require.NoError(t, err, s.Name)
		require.NoError(t, tt.Validate(), s.Name)
		assert.Equal(t, s.Name, tt.Name)
		assert.Equal(t, int64(42), tt.Seed)
		assert.Equal(t, "/tmp/store", tt.Store.Root)
		assert.Equal(t, max(time.Second, s.MinTimeLimit), tt.TimeLimit, s.Name)
		if s.Manager != "" {
			assert.Equal(t, s.Manager, tt.Spec.Manager.Name, "%s: Manager names the manager its flags run", s.Name)
		} else {
			assert.False(t, tt.Spec.Manager.Managed(), "%s runs no manager", s.Name)
		}
	}
	bad := Scenario{Name: "bad", Args: []string{"--concurrency", "0"}}
	_, err := bad.Test("/tmp/store", 1, 0)
	assert.True(t, usererr.Is(err), "%v", err)
	assert.ErrorContains(t, err, "scenario bad")
	// A scenario cannot slip --read-all-keys past the checks either.
	for _, args := range [][]string{{"--workload", "register", "--read-all-keys"}, {"--workload", "append", "--writes-only", "--read-all-keys"}} {
		_, err = Scenario{Name: "bad", Args: args}.Test("/tmp/store", 1, 0)
		assert.ErrorContains(t, err, "--read-all-keys", "%v", args)
	}
}

func TestTallyBarAndMedian(t *testing.T) {
	finds := &Tally{Scenario: Scenario{Expect: checker.Invalid}, Runs: 20, Found: 19}
	assert.True(t, finds.Met(), "19 of 20 meets a finding's bar")
	finds.Found = 18
	assert.False(t, finds.Met())
	valid := &Tally{Scenario: Scenario{Expect: checker.Valid}, Runs: 20, Found: 19}
	assert.False(t, valid.Met(), "a valid scenario must be valid in every run")

	_, ok := finds.MedianFirst()
	assert.False(t, ok)
	finds.Firsts = []time.Duration{3 * time.Second, time.Second, 2 * time.Second}
	med, ok := finds.MedianFirst()
	assert.True(t, ok)
	assert.Equal(t, 2*time.Second, med)
	assert.Equal(t, 3*time.Second, finds.Firsts[0], "the tally's own order is kept")
}

func TestZooRefusesBeforeRunning(t *testing.T) {
	for _, z := range []Zoo{{Runs: 0, FirstSeed: 1}, {Runs: 1, FirstSeed: 0}} {
		tallies, err := z.Run(context.Background())
		assert.Nil(t, tallies)
		assert.True(t, usererr.Is(err), "%v", err)
	}
}
