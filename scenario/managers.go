package scenario

import (
	"time"

	"github.com/strongcheck/strongcheck/checker"
	"github.com/strongcheck/strongcheck/cluster"
)

// managed are the flags of a scenario run by an HA manager: a failover
// takes the manager's ttl or health-check timeouts (about 10-15 s with
// strongcheck's defaults), so faults come every 30 s.
func managed(manager string, limit time.Duration, extra ...string) []string {
	return append([]string{"--manager", manager, "--time-limit", limit.String(), "--nemesis-interval", "30s"}, extra...)
}

// lost is a manager scenario's finding: acknowledged writes (acknowledged
// with the sync-cancel warning, when warned) missing from the final state.
func lost(warned bool) []Expect {
	if warned {
		return []Expect{{Kind: checker.KindLostWarned, Either: true}}
	}
	return []Expect{{Kind: checker.KindLostWrite, Either: true}}
}

// managerScenarios are the zoo's entries for the HA managers: each
// manager's sound configuration, which must stay valid, and the
// documented ways its weaker settings lose acknowledged writes. The sound
// ones give clients an --op-timeout longer than any failover: a client
// timeout during a commit that waits for cut-off standbys sends a cancel,
// and PostgreSQL then acknowledges a commit only the primary has (Patroni
// issue 1412); pg_auto_failover-timeout-cancel shows it.
var managerScenarios = []Scenario{
	{
		// Patroni talks to etcd through its v2 API: Patroni 3.0.2's etcd3
		// code, when its lease was renewed, writes the leader key without
		// comparing its owner, so a primary cut off by a partition can take
		// the key back from the leader elected meanwhile and promote itself
		// on its own timeline (2 of 3 runs with partitions of the primary;
		// fixed upstream after 3.0.2, Patroni pull request 2689; README).
		// Its v2 code writes the key only while it still holds it.
		Name: "patroni-sound",
		Shows: "Patroni with synchronous_mode on, strict, both standbys synchronous (strongcheck's default) and its etcd v2 API keeps every acknowledged write " +
			"through crashes of the primary node (postgres, Patroni and its etcd member) and partitions that cut nodes and their etcd members off, the primary included",
		Args:         managed(cluster.ManagerPatroni, 75*time.Second, "--manager-conf", "dcs=etcd", "--workload", "register,set", "--read-from", "primary", "--op-timeout", "60s", "--nemesis", "kill-primary,partition"),
		Expect:       checker.Valid,
		Models:       guideOnly(checker.Valid, checker.Valid),
		MustNot:      lossKinds,
		Manager:      cluster.ManagerPatroni,
		MinTimeLimit: 75 * time.Second,
	},
	{
		Name: "patroni-async-lag",
		Shows: "Patroni with synchronous_mode off and a maximum_lag_on_failover of 1 GiB promotes a standby that lags behind a congested link: " +
			"the writes the old primary had acknowledged and not yet sent are lost (maximum_lag_on_failover bounds the loss, it does not prevent it)",
		Args: managed(cluster.ManagerPatroni, 45*time.Second, "--manager-conf", "synchronous_mode=off", "--manager-conf", "synchronous_mode_strict=off",
			"--manager-conf", "maximum_lag_on_failover=1073741824", "--workload", "set", "--read-from", "primary", "--nemesis", "lag-then-kill"),
		Expect:       checker.Invalid,
		Models:       map[checker.Model]checker.Verdict{checker.ModelGuide: checker.Invalid},
		Must:         lost(false),
		Manager:      cluster.ManagerPatroni,
		MinTimeLimit: 45 * time.Second,
	},
	{
		Name: "patroni-cancel-sync-wait",
		Shows: "Patroni issue 1412: with one synchronous standby, cancelling the commits that wait for it while it is cut off acknowledges them (with a warning) though only the primary has them; " +
			"the primary then dies and Patroni may promote only the synchronous standby, which lacks them",
		Args: managed(cluster.ManagerPatroni, 75*time.Second, "--manager-conf", "synchronous_node_count=1",
			"--workload", "set", "--read-from", "primary", "--nemesis", "cut-then-kill:cancel"),
		Expect:       checker.Invalid,
		Models:       map[checker.Model]checker.Verdict{checker.ModelGuide: checker.Invalid},
		Must:         lost(true),
		Manager:      cluster.ManagerPatroni,
		MinTimeLimit: 75 * time.Second,
	},
	{
		Name: "pg_auto_failover-timeout-cancel",
		Shows: "pg_auto_failover's sound settings with clients that time out after 5 s: a partition cuts the primary from both standbys and the monitor, " +
			"the clients' cancels acknowledge commits only the primary has (with a warning), the monitor promotes a standby and those writes are lost",
		Args:         managed(cluster.ManagerAutoFailover, 45*time.Second, "--workload", "set", "--read-from", "primary", "--op-timeout", "5s", "--nemesis", "partition:primary"),
		Expect:       checker.Invalid,
		Models:       map[checker.Model]checker.Verdict{checker.ModelGuide: checker.Invalid},
		Must:         lost(true),
		Manager:      cluster.ManagerAutoFailover,
		MinTimeLimit: 45 * time.Second,
	},
	{
		Name:         "pg_auto_failover-sound",
		Shows:        "pg_auto_failover with number_sync_standbys 1 (ANY 1 of both standbys, the most it allows with two) keeps every acknowledged write through crashes of the primary and partitions that cut the monitor too",
		Args:         managed(cluster.ManagerAutoFailover, 75*time.Second, "--workload", "register,set", "--read-from", "primary", "--op-timeout", "60s", "--nemesis", "kill-primary,partition"),
		Expect:       checker.Valid,
		Models:       guideOnly(checker.Valid, checker.Valid),
		MustNot:      lossKinds,
		Manager:      cluster.ManagerAutoFailover,
		MinTimeLimit: 75 * time.Second,
	},
	{
		Name: "pg_auto_failover-async",
		Shows: "pg_auto_failover with replication-quorum false on every node (asynchronous replication, as its documentation describes) promotes a standby that lags behind a congested link: " +
			"the writes the old primary had acknowledged are lost",
		Args: managed(cluster.ManagerAutoFailover, 45*time.Second, "--manager-conf", "replication-quorum=false", "--manager-conf", "number_sync_standbys=0",
			"--workload", "set", "--read-from", "primary", "--nemesis", "lag-then-kill"),
		Expect:       checker.Invalid,
		Models:       map[checker.Model]checker.Verdict{checker.ModelGuide: checker.Invalid},
		Must:         lost(false),
		Manager:      cluster.ManagerAutoFailover,
		MinTimeLimit: 45 * time.Second,
	},
}
