package cluster

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestManagerSpecValidate(t *testing.T) {
	nodes := DefaultNodes
	for _, tc := range []struct {
		name string
		spec ManagerSpec
		err  string // "" for valid
	}{
		{"none", ManagerSpec{}, ""},
		{"none with conf", ManagerSpec{Conf: map[string]string{"ttl": "10"}}, "needs --manager"},
		{"unknown manager", ManagerSpec{Name: "stolon"}, `unknown manager "stolon" (known: none, patroni, pg_auto_failover)`},
		{"patroni defaults", ManagerSpec{Name: ManagerPatroni}, ""},
		{"unknown key lists the known", ManagerSpec{Name: ManagerPatroni, Conf: map[string]string{"sync": "on"}}, "known: synchronous_mode, synchronous_mode_strict"},
		{"bad bool", ManagerSpec{Name: ManagerPatroni, Conf: map[string]string{"synchronous_mode": "maybe"}}, "want on or off"},
		{"bad int", ManagerSpec{Name: ManagerPatroni, Conf: map[string]string{"ttl": "ten"}}, "want an integer"},
		{"ttl too short", ManagerSpec{Name: ManagerPatroni, Conf: map[string]string{"ttl": "5"}}, "ttl >= loop_wait + 2*retry_timeout"},
		{"per-node key", ManagerSpec{Name: ManagerAutoFailover, Conf: map[string]string{"candidate-priority.n3": "0"}}, ""},
		{"per-node key, no such node", ManagerSpec{Name: ManagerAutoFailover, Conf: map[string]string{"candidate-priority.n9": "0"}}, "take a node"},
		{"per-node only for some keys", ManagerSpec{Name: ManagerAutoFailover, Conf: map[string]string{"number_sync_standbys.n2": "1"}}, "take a node"},
		{"priority range", ManagerSpec{Name: ManagerAutoFailover, Conf: map[string]string{"candidate-priority": "101"}}, "want 0 to 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate(nodes)
			if tc.err == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.True(t, errors.Is(err, ErrSpec), "a user's mistake: exit 254")
			assert.Contains(t, err.Error(), tc.err)
		})
	}
	assert.ErrorContains(t, ManagerSpec{Name: ManagerAutoFailover}.Validate([]string{"n1", "monitor"}), "is the monitor's")
}

func TestManagerSpecEffective(t *testing.T) {
	m := ManagerSpec{Name: ManagerAutoFailover, Conf: map[string]string{"number_sync_standbys": "0", "candidate-priority.n3": "0"}}
	eff := m.Effective()
	assert.Equal(t, "0", eff["number_sync_standbys"])
	assert.Equal(t, "50", eff["candidate-priority"], "the default where not overridden")
	assert.NotContains(t, eff, "candidate-priority.n3")
	assert.Equal(t, "0", m.NodeValue("candidate-priority", "n3"))
	assert.Equal(t, "50", m.NodeValue("candidate-priority", "n2"))
	st := m.Settings()
	assert.Equal(t, ManagerAutoFailover, st["manager"])
	assert.Equal(t, "0", st["manager.candidate-priority.n3"])
	assert.Equal(t, "1000", st["manager.health_check_period"])
	assert.Empty(t, ManagerSpec{}.Effective())

	p := ManagerSpec{Name: ManagerPatroni}
	assert.True(t, p.Bool("synchronous_mode_strict"))
	assert.Equal(t, 2, p.Int("synchronous_node_count"))
}

func TestSpecUnderManager(t *testing.T) {
	s := Spec{Manager: ManagerSpec{Name: ManagerPatroni}}
	assert.NotContains(t, s.Effective(), "synchronous_standby_names", "the manager sets it")
	assert.Equal(t, "", s.SyncStandbyNames())
	s.Settings = Settings{"synchronous_standby_names": "ANY 1 (n2, n3)"}
	assert.ErrorContains(t, s.Validate(), "is set by patroni")
	conf, err := ParseManagerConf([]string{"ttl=20", " loop_wait = 2 "})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"ttl": "20", "loop_wait": "2"}, conf)
	_, err = ParseManagerConf([]string{"ttl"})
	assert.ErrorIs(t, err, ErrSpec)
}

func TestManagerViewString(t *testing.T) {
	v := ManagerView{Primary: "n2", Timeline: 3, Sync: []string{"n1", "n3"}, Nodes: map[string]string{"n3": "secondary", "n1": "secondary"}}
	assert.Equal(t, "primary n2 on timeline 3; sync n1,n3; n1 secondary; n3 secondary", v.String())
	assert.Equal(t, "no primary", ManagerView{}.String())
}
