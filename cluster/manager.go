package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// HA managers a cluster can be put in the charge of (ManagerSpec.Name).
// ManagerNone is the harness's own failover.
const (
	ManagerNone          = "none"
	ManagerPatroni       = "patroni"
	ManagerAutoFailover  = "pg_auto_failover"
	managerSettingPrefix = "manager."
)

// AutoFailoverMonitor names pg_auto_failover's monitor where a node name
// would stand (its namespace, its log); no node may be called so.
const AutoFailoverMonitor = "monitor"

// Managers lists the --manager values with what each runs.
var Managers = []struct{ Name, Help string }{
	{ManagerNone, "strongcheck fails over itself (--failover)"},
	{ManagerPatroni, "Patroni with an etcd member in every node's namespace (partitions cut the DCS too)"},
	{ManagerAutoFailover, "pg_auto_failover: a monitor in a namespace of its own and a keeper (pg_autoctl) per node"},
}

// ManagerKey is one setting of an HA manager that --manager-conf accepts.
type ManagerKey struct {
	Name string
	// Default is strongcheck's value: the manager's sound configuration
	// for the guide's promise (RPO = 0), with timers short enough for a
	// test of seconds.
	Default string
	// Kind is "bool", "int", "bytes" (an integer of bytes), or a
	// "|"-separated list of the accepted words.
	Kind string
	Help string
}

// ManagerKeys are the settings of each manager, in the order --help shows
// them. The defaults are the sound configuration (see README.md, "HA
// managers"): Patroni's synchronous_mode with strict mode and both standbys
// synchronous; pg_auto_failover's number_sync_standbys 1, the most it
// accepts with two standbys (it needs number_sync_standbys + 1 standbys).
var ManagerKeys = map[string][]ManagerKey{
	ManagerPatroni: {
		{"synchronous_mode", "on", "bool", "Patroni manages synchronous_standby_names and promotes only a synchronous standby"},
		{"synchronous_mode_strict", "on", "bool", "with no synchronous standby left, block writes rather than turn asynchronous"},
		{"synchronous_node_count", "2", "int", "how many standbys are synchronous (FIRST n)"},
		{"maximum_lag_on_failover", "1048576", "bytes", "a standby further behind than this (bytes) is never promoted"},
		{"maximum_lag_on_syncnode", "-1", "int", "swap a synchronous standby lagging more than this (bytes); -1 never"},
		{"check_timeline", "off", "bool", "promote only a standby on the leader's timeline"},
		{"ttl", "10", "int", "leader key TTL, seconds: a dead leader is replaced after it"},
		{"loop_wait", "1", "int", "seconds between HA loops"},
		{"retry_timeout", "4", "int", "seconds before a DCS or PostgreSQL operation is given up (ttl >= loop_wait + 2*retry_timeout)"},
		{"failsafe_mode", "off", "bool", "keep the primary while the DCS is down if every member answers"},
		{"use_pg_rewind", "on", "bool", "rewind a former primary instead of re-cloning it"},
		{"dcs", "etcd3", "etcd3|etcd", "etcd API Patroni uses: etcd3, or etcd (v2, etcd runs with --enable-v2); Patroni 3.0.2's etcd3 code can give a demoting leader its key back (README)"},
	},
	ManagerAutoFailover: {
		{"number_sync_standbys", "1", "int", "formation: standbys every commit waits for (ANY n); at most the standbys minus one"},
		{"replication-quorum", "true", "bool", "every node: take part in synchronous_standby_names"},
		{"candidate-priority", "50", "int", "every node: failover priority 0-100 (0: never promoted)"},
		{"health_check_period", "1000", "int", "monitor: ms between health checks"},
		{"health_check_timeout", "1000", "int", "monitor: ms before a health check connection fails"},
		{"health_check_max_retries", "1", "int", "monitor: retries before a node is unhealthy"},
		{"health_check_retry_delay", "500", "int", "monitor: ms between retries"},
		{"node_considered_unhealthy_timeout", "3000", "int", "monitor: ms without a keeper report before a failing node is unhealthy"},
		{"primary_demote_timeout", "8000", "int", "monitor: ms to wait for an unreachable primary to demote before promoting"},
		{"network_partition_timeout", "6", "int", "keeper: seconds alone (no monitor, no standby) before a primary demotes itself"},
		{"prepare_promotion_catchup", "10", "int", "keeper: seconds a candidate may spend catching up before promotion"},
	},
}

// ManagerSpec puts a cluster in the charge of an HA manager.
type ManagerSpec struct {
	// Name is one of Managers; "" and ManagerNone mean none.
	Name string
	// Conf overrides the manager's defaults (ManagerKeys).
	Conf map[string]string
}

// Managed reports whether an HA manager runs the cluster.
func (m ManagerSpec) Managed() bool { return m.Name != "" && m.Name != ManagerNone }

// Effective is every key of the manager with its value: the default or
// the override. Empty when unmanaged.
func (m ManagerSpec) Effective() map[string]string {
	out := map[string]string{}
	if !m.Managed() {
		return out
	}
	for _, k := range ManagerKeys[m.Name] {
		out[k.Name] = k.Default
	}
	for k, v := range m.Conf {
		if !strings.Contains(k, ".") {
			out[k] = v
		}
	}
	return out
}

// Bool reads a boolean key of the effective configuration.
func (m ManagerSpec) Bool(key string) bool {
	b, _ := parseBool(m.Effective()[key])
	return b
}

// Int reads an integer key of the effective configuration (0 when unset).
func (m ManagerSpec) Int(key string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(m.Effective()[key]))
	return n
}

// Settings are the manager's effective keys under the "manager." prefix,
// for test.json and the report.
func (m ManagerSpec) Settings() map[string]string {
	out := map[string]string{}
	if !m.Managed() {
		return out
	}
	out["manager"] = m.Name
	for k, v := range m.Effective() {
		out[managerSettingPrefix+k] = v
	}
	for k, v := range m.Conf {
		out[managerSettingPrefix+k] = v
	}
	return out
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1":
		return true, nil
	case "off", "false", "no", "0":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean")
}

// perNode are the keys that may name one node: key.NODE.
var perNode = []string{"candidate-priority", "replication-quorum"}

// NodeValue is the value of a per-node key for node: key.NODE when given,
// else key.
func (m ManagerSpec) NodeValue(key, node string) string {
	if v, ok := m.Conf[key+"."+node]; ok {
		return v
	}
	return m.Effective()[key]
}

// Validate checks the manager's name, every key against ManagerKeys (an
// unknown key names the known ones; candidate-priority and
// replication-quorum may name a node, e.g. candidate-priority.n3=0) and
// every value against its kind.
func (m ManagerSpec) Validate(nodes []string) error {
	if m.Name == "" || m.Name == ManagerNone {
		if len(m.Conf) > 0 {
			return fmt.Errorf("%w: --manager-conf needs --manager patroni or pg_auto_failover", ErrSpec)
		}
		return nil
	}
	keys, ok := ManagerKeys[m.Name]
	if !ok {
		var names []string
		for _, x := range Managers {
			names = append(names, x.Name)
		}
		return fmt.Errorf("%w: unknown manager %q (known: %s)", ErrSpec, m.Name, strings.Join(names, ", "))
	}
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		names = append(names, k.Name)
	}
	if m.Name == ManagerAutoFailover && slices.Contains(nodes, AutoFailoverMonitor) {
		return fmt.Errorf("%w: node name %q is the monitor's", ErrSpec, AutoFailoverMonitor)
	}
	given := make([]string, 0, len(m.Conf))
	for k := range m.Conf {
		given = append(given, k)
	}
	sort.Strings(given)
	for _, k := range given {
		base, node, hasNode := strings.Cut(k, ".")
		if hasNode && (!slices.Contains(perNode, base) || !slices.Contains(nodes, node)) {
			return fmt.Errorf("%w: --manager-conf %s: only %s take a node (key.NODE, nodes %s)", ErrSpec, k, strings.Join(perNode, " and "), strings.Join(nodes, ", "))
		}
		i := slices.IndexFunc(keys, func(x ManagerKey) bool { return x.Name == base })
		if i < 0 {
			return fmt.Errorf("%w: --manager-conf %s: not a setting of %s (known: %s)", ErrSpec, k, m.Name, strings.Join(names, ", "))
		}
		if err := keys[i].check(m.Conf[k]); err != nil {
			return fmt.Errorf("%w: --manager-conf %s=%s: %v", ErrSpec, k, m.Conf[k], err)
		}
	}
	return m.checkRelations()
}

func (k ManagerKey) check(v string) error {
	switch k.Kind {
	case "bool":
		_, err := parseBool(v)
		if err != nil {
			return fmt.Errorf("want on or off")
		}
	case "int", "bytes":
		if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("want an integer")
		}
	default:
		if !slices.Contains(strings.Split(k.Kind, "|"), v) {
			return fmt.Errorf("want one of %s", strings.ReplaceAll(k.Kind, "|", ", "))
		}
	}
	return nil
}

// checkRelations refuses combinations the manager itself refuses, so the
// user hears it before a cluster is built.
func (m ManagerSpec) checkRelations() error {
	switch m.Name {
	case ManagerPatroni:
		ttl, loop, retry := m.Int("ttl"), m.Int("loop_wait"), m.Int("retry_timeout")
		if loop < 1 || retry < 1 || ttl < loop+2*retry {
			return fmt.Errorf("%w: Patroni needs ttl >= loop_wait + 2*retry_timeout, all positive (got ttl %d, loop_wait %d, retry_timeout %d)", ErrSpec, ttl, loop, retry)
		}
		if n := m.Int("synchronous_node_count"); n < 1 {
			return fmt.Errorf("%w: synchronous_node_count %d: must be at least 1", ErrSpec, n)
		}
	case ManagerAutoFailover:
		if n := m.Int("number_sync_standbys"); n < 0 {
			return fmt.Errorf("%w: number_sync_standbys %d: must be >= 0", ErrSpec, n)
		}
		if p := m.Int("candidate-priority"); p < 0 || p > 100 {
			return fmt.Errorf("%w: candidate-priority %d: want 0 to 100", ErrSpec, p)
		}
	}
	return nil
}

// ParseManagerConf reads --manager-conf key=value entries.
func ParseManagerConf(kvs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: --manager-conf %q: want key=value", ErrSpec, kv)
		}
		out[k] = strings.TrimSpace(v)
	}
	return out, nil
}

// Manager is implemented by a cluster whose failover an HA manager
// decides. The harness and the nemesis then ask it instead of deciding:
// clients follow Primary, a kill of the primary waits for AwaitFailover,
// and the settle step waits for Settle instead of repairing the cluster
// behind the manager's back. Its methods only observe (and start what is
// down); they never promote or rewind a node themselves.
type Manager interface {
	// Manager is the manager's name and version, e.g. "patroni 3.0.2".
	Manager() string
	// View is the manager's own account of the cluster right now: the
	// node it names primary (as a client router asking it would be
	// told), the timeline, and each node's state in its words.
	View(ctx context.Context) (ManagerView, error)
	// AwaitFailover waits until the manager names a primary other than
	// old and that node accepts writes (a write with synchronous_commit
	// local succeeds; the harness's own writes then show whether the
	// sync wait is satisfied). It returns the manager's decision.
	AwaitFailover(ctx context.Context, old string) (ManagerView, error)
	// AwaitHealthy waits until the manager reports every node running
	// and following its primary (the manager's own health check, not the
	// harness's), and returns its view then.
	AwaitHealthy(ctx context.Context) (ManagerView, error)
}

// ManagerView is what the manager says about the cluster at one moment.
type ManagerView struct {
	// Primary is the node it names primary ("" while none).
	Primary  string
	Timeline int
	// Nodes is each node's state as the manager words it (e.g. Patroni's
	// role and state, pg_auto_failover's reported and assigned states).
	Nodes map[string]string
	// Sync are the standbys the manager counts as synchronous now.
	Sync []string
}

// String is the view in one line, for the history's detail field.
func (v ManagerView) String() string {
	var b strings.Builder
	if v.Primary == "" {
		b.WriteString("no primary")
	} else {
		fmt.Fprintf(&b, "primary %s", v.Primary)
		if v.Timeline > 0 {
			fmt.Fprintf(&b, " on timeline %d", v.Timeline)
		}
	}
	if len(v.Sync) > 0 {
		fmt.Fprintf(&b, "; sync %s", strings.Join(v.Sync, ","))
	}
	nodes := make([]string, 0, len(v.Nodes))
	for n := range v.Nodes {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		fmt.Fprintf(&b, "; %s %s", n, v.Nodes[n])
	}
	return b.String()
}

// ErrNotSettled marks SettleManaged's failure when the manager did not
// bring every node back in time (not healthy, or a standby not caught up):
// the state the manager left the cluster in, to be judged from the
// history, not a failure of the harness.
var ErrNotSettled = errors.New("the manager did not bring every node back")

// SettleManaged brings a managed cluster back after a run without acting
// in the manager's place: it resumes paused nodes, heals partitions and
// starts the nodes that are down (the manager then rejoins them, with
// pg_rewind where it is configured to), waits until the manager reports
// every node healthy, and until every standby has replayed the primary's
// WAL, for at most wait (then ErrNotSettled; the resume, heal and starts
// are bounded by ctx only). It returns the actions taken and the manager's
// final view.
func SettleManaged(ctx context.Context, c Cluster, m Manager, wait time.Duration) (RepairResult, ManagerView, error) {
	var res RepairResult
	for _, n := range c.Nodes() {
		switch c.Status(n) {
		case Paused:
			if err := c.Resume(ctx, n); err != nil {
				return res, ManagerView{}, fmt.Errorf("settle: resume %s: %w", n, err)
			}
			res.Actions = append(res.Actions, "resumed "+n)
		case Down:
			if err := c.Start(ctx, n); err != nil {
				return res, ManagerView{}, fmt.Errorf("settle: start %s: %w", n, err)
			}
			res.Actions = append(res.Actions, "started "+n+" (the manager rejoins it)")
		}
	}
	if err := c.Heal(ctx); err != nil {
		return res, ManagerView{}, fmt.Errorf("settle: heal: %w", err)
	}
	t0 := time.Now()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	v, err := m.AwaitHealthy(wctx)
	res.Primary = v.Primary
	res.Sync = strings.Join(v.Sync, ",")
	if err != nil {
		return res, v, fmt.Errorf("settle: %s: %w: %w", m.Manager(), ErrNotSettled, err)
	}
	res.Actions = append(res.Actions, fmt.Sprintf("%s reported every node healthy after %.1fs", m.Manager(), time.Since(t0).Seconds()))
	var standbys []string
	for _, n := range c.Nodes() {
		if n != v.Primary {
			standbys = append(standbys, n)
		}
	}
	if err := WaitReplayed(wctx, c, v.Primary, standbys); err != nil {
		return res, v, fmt.Errorf("settle: %s: %w: %w", m.Manager(), ErrNotSettled, err)
	}
	return res, v, nil
}
