package scenario_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/strongcheck/strongcheck/backends"
	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/scenario"
)

// TestIntegrationZooOnce runs every scenario once, as `strongcheck zoo`
// does, with a 15 s time limit (README's track record of the local
// scenarios is measured at 15 s; a manager's scenario keeps its longer
// MinTimeLimit). A scenario that must find an anomaly and
// misses it gets a second run (logged): the zoo's bar is 19 of 20, and CI
// must not fail on the twentieth. A scenario that must stay valid gets no
// second chance: an anomaly there is a finding in PostgreSQL, the harness
// or a checker.
//
// The local scenarios run one after the other: their clients take the
// machine's cores. The manager scenarios run two at a time (managerSlots),
// each cluster in namespaces and a subnet of its own as
// TestIntegrationManagedKillPrimary runs them: they mostly wait on their
// manager's timeouts (a Patroni or pg_auto_failover run alone keeps about
// one of two cores busy), so their verdicts must not depend on being alone.
func TestIntegrationZooOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the zoo takes minutes")
	}
	if err := local.Preflight(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	if _, err := local.FindBinaries(); err != nil {
		t.Skipf("local backend unavailable: %v", err)
	}
	store, err := os.MkdirTemp("", "sc-zoo-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(store, 0o755))
	defer os.RemoveAll(store)
	for _, s := range scenario.All {
		if s.Manager == "" {
			t.Run(s.Name, func(t *testing.T) { once(t, store, s) })
		}
	}
	t.Run("managers", func(t *testing.T) {
		slots := make(chan struct{}, managerSlots)
		for _, s := range scenario.All {
			if s.Manager == "" {
				continue
			}
			t.Run(s.Name, func(t *testing.T) {
				if err := local.ManagerPreflight(s.Manager); err != nil {
					t.Skipf("%s unavailable (scripts/install-deps.sh --managers installs it): %v", s.Manager, err)
				}
				t.Parallel()
				slots <- struct{}{}
				defer func() { <-slots }()
				once(t, store, s)
			})
		}
	})
}

// managerSlots is how many manager scenarios TestIntegrationZooOnce runs
// at once.
const managerSlots = 2

// once runs scenario s as the zoo does, a second time with another seed
// if it must find an anomaly and did not, and fails t if it was not as
// expected.
func once(t *testing.T, store string, s scenario.Scenario) {
	tries := 2
	if s.Expect == checker.Valid {
		tries = 1
	}
	for try := 1; try <= tries; try++ {
		var log strings.Builder
		t0 := time.Now()
		z := scenario.Zoo{Scenarios: []scenario.Scenario{s}, Runs: 1, Store: store, FirstSeed: int64(try),
			TimeLimit: 15 * time.Second, Backend: backends.NewLocal(local.AutoSubnet, nil),
			Log: func(line string) { log.WriteString(line + "\n") }}
		tallies, err := z.Run(context.Background())
		t.Logf("try %d in %.0fs\n%s", try, time.Since(t0).Seconds(), log.String())
		require.NoError(t, err, "a scenario that cannot run is a harness error")
		require.Len(t, tallies, 1)
		if tallies[0].Met() {
			return
		}
	}
	t.Fatalf("%s: not as expected (%s) in %d run(s)", s.Name, s.Finds(), tries)
}
