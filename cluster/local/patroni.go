package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
)

// Ports of the Patroni flavour, inside each node's namespace.
const (
	PatroniAPIPort = 8008
	etcdClientPort = 2379
	etcdPeerPort   = 2380
)

// patroni runs Patroni with an etcd member in every node's namespace: the
// DCS is spread over the nodes as in a three-host deployment, so a
// partition or a crash of a node cuts or kills its DCS member too (a node
// cut from both others is in the DCS's minority: its Patroni cannot renew
// the leader key and demotes). Patroni bootstraps the spec's first node
// with initdb, clones the others with pg_basebackup, and owns
// synchronous_standby_names.
type patroni struct {
	m       *ManagedCluster
	version string
}

func (p *patroni) describe() string {
	if p.version == "" {
		p.version = "patroni " + toolVersion("patroni", "--version") + " (etcd " + toolVersion("etcd", "--version") + ")"
	}
	return p.version
}

func (p *patroni) extra() []string { return nil }

// toolVersion is the last word of the first line of `prog args...`.
func toolVersion(prog string, args ...string) string {
	out, err := exec.Command(prog, args...).Output()
	if err != nil {
		return "?"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return "?"
	}
	return f[len(f)-1]
}

func (p *patroni) provision(ctx context.Context) error {
	m := p.m
	for _, n := range m.nodes {
		for _, d := range []string{m.dataDir(n), m.mgrDir(n), filepath.Join(m.mgrDir(n), "etcd")} {
			if err := m.ownedDir(d); err != nil {
				return err
			}
		}
		if err := p.writeConfig(n); err != nil {
			return err
		}
		m.newAgent(n, "etcd", "-etcd", filepath.Join(m.mgrDir(n), "etcd"))
		m.newAgent(n, "patroni", "", p.configPath(n))
	}
	for _, n := range m.nodes {
		if err := p.startEtcd(n); err != nil {
			return err
		}
	}
	// The first node bootstraps alone, so that it is the initial primary
	// the harness starts from; the others then clone it.
	if err := p.startPatroni(m.nodes[0]); err != nil {
		return err
	}
	bctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		v, err := p.view(bctx)
		if err == nil && v.Primary == m.nodes[0] {
			break
		}
		select {
		case <-bctx.Done():
			return fmt.Errorf("%s did not bootstrap: %v (last error %v)%s", m.nodes[0], bctx.Err(), err, m.logTails(m.nodes[0]))
		case <-time.After(200 * time.Millisecond):
		}
	}
	for _, n := range m.nodes[1:] {
		if err := p.startPatroni(n); err != nil {
			return err
		}
	}
	return nil
}

func (p *patroni) configPath(node string) string {
	return filepath.Join(p.m.mgrDir(node), "patroni.yml")
}

func (p *patroni) startNode(ctx context.Context, node string) error {
	as := p.m.agents[node]
	if len(as) > 0 && !as[0].running() {
		if err := p.startEtcd(node); err != nil {
			return err
		}
	}
	return p.startPatroni(node)
}

func (p *patroni) startEtcd(node string) error {
	m := p.m
	a := m.agents[node][0]
	ip := m.net.ipOf[node]
	var initial []string
	for _, n := range m.nodes {
		initial = append(initial, fmt.Sprintf("%s=http://%s:%d", n, m.net.ipOf[n], etcdPeerPort))
	}
	dataDir := filepath.Join(m.mgrDir(node), "etcd")
	argv := []string{"etcd", "--name", node, "--data-dir", dataDir,
		"--listen-peer-urls", fmt.Sprintf("http://%s:%d", ip, etcdPeerPort),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://%s:%d", ip, etcdPeerPort),
		"--listen-client-urls", fmt.Sprintf("http://%s:%d", ip, etcdClientPort),
		"--advertise-client-urls", fmt.Sprintf("http://%s:%d", ip, etcdClientPort),
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-token", "strongcheck-" + m.entry.ID,
		"--initial-cluster-state", "new", "--heartbeat-interval", "100", "--election-timeout", "1000",
		"--log-level", "warn", "--logger", "zap"}
	if p.v2() {
		argv = append(argv, "--enable-v2=true")
	}
	return m.launch(node, a, "", m.agentEnv(m.mgrDir(node)), argv)
}

// v2 reports whether Patroni talks to etcd through its v2 API (dcs=etcd).
func (p *patroni) v2() bool { return p.m.spec.Manager.Effective()["dcs"] == "etcd" }

func (p *patroni) startPatroni(node string) error {
	m := p.m
	a := m.agents[node][1]
	return m.launch(node, a, m.dataDir(node), m.agentEnv(m.mgrDir(node)), []string{"patroni", p.configPath(node)})
}

// patroniConfig is the part of Patroni's configuration file strongcheck
// writes (as JSON, which Patroni's YAML reader accepts).
type patroniConfig struct {
	Scope     string            `json:"scope"`
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Log       map[string]string `json:"log"`
	RestAPI   struct {
		Listen         string `json:"listen"`
		ConnectAddress string `json:"connect_address"`
	} `json:"restapi"`
	// Etcd3 or Etcd: the DCS section, by the dcs key.
	Etcd3     *patroniEtcd `json:"etcd3,omitempty"`
	Etcd      *patroniEtcd `json:"etcd,omitempty"`
	Bootstrap struct {
		DCS    patroniDCS          `json:"dcs"`
		InitDB []map[string]string `json:"initdb"`
	} `json:"bootstrap"`
	PostgreSQL struct {
		Listen         string            `json:"listen"`
		ConnectAddress string            `json:"connect_address"`
		DataDir        string            `json:"data_dir"`
		BinDir         string            `json:"bin_dir"`
		PGPass         string            `json:"pgpass"`
		Auth           map[string]pgAuth `json:"authentication"`
		Parameters     map[string]string `json:"parameters"`
		PGHBA          []string          `json:"pg_hba"`
	} `json:"postgresql"`
	Watchdog map[string]string `json:"watchdog"`
}

// patroniEtcd is the etcd (v2) or etcd3 section of Patroni's configuration.
type patroniEtcd struct {
	Hosts []string `json:"hosts"`
}

type pgAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// patroniDCS is the dynamic configuration Patroni writes to the DCS at
// bootstrap: the keys of --manager-conf, typed as Patroni wants them.
type patroniDCS struct {
	TTL                   int  `json:"ttl"`
	LoopWait              int  `json:"loop_wait"`
	RetryTimeout          int  `json:"retry_timeout"`
	MaximumLagOnFailover  int  `json:"maximum_lag_on_failover"`
	MaximumLagOnSyncnode  int  `json:"maximum_lag_on_syncnode"`
	CheckTimeline         bool `json:"check_timeline"`
	SynchronousMode       bool `json:"synchronous_mode"`
	SynchronousModeStrict bool `json:"synchronous_mode_strict"`
	SynchronousNodeCount  int  `json:"synchronous_node_count"`
	FailsafeMode          bool `json:"failsafe_mode"`
	PostgreSQL            struct {
		UsePGRewind bool              `json:"use_pg_rewind"`
		UseSlots    bool              `json:"use_slots"`
		Parameters  map[string]string `json:"parameters"`
	} `json:"postgresql"`
}

// patroniOwned are settings Patroni sets itself (from its listen address,
// its scope, its synchronous mode); the spec's values are left out.
var patroniOwned = []string{"listen_addresses", "port", "cluster_name", "synchronous_standby_names", "primary_conninfo", "unix_socket_directories"}

func (p *patroni) writeConfig(node string) error {
	m := p.m
	ms := m.spec.Manager
	ip := m.net.ipOf[node]
	var cfg patroniConfig
	cfg.Scope, cfg.Namespace, cfg.Name = "strongcheck-"+m.entry.ID, "/strongcheck/", node
	cfg.Log = map[string]string{"level": "INFO"}
	cfg.RestAPI.Listen = fmt.Sprintf("%s:%d", ip, PatroniAPIPort)
	cfg.RestAPI.ConnectAddress = cfg.RestAPI.Listen
	dcs := &patroniEtcd{}
	for _, n := range m.nodes {
		dcs.Hosts = append(dcs.Hosts, fmt.Sprintf("%s:%d", m.net.ipOf[n], etcdClientPort))
	}
	if p.v2() {
		cfg.Etcd = dcs
	} else {
		cfg.Etcd3 = dcs
	}
	d := &cfg.Bootstrap.DCS
	d.TTL, d.LoopWait, d.RetryTimeout = ms.Int("ttl"), ms.Int("loop_wait"), ms.Int("retry_timeout")
	d.MaximumLagOnFailover, d.MaximumLagOnSyncnode = ms.Int("maximum_lag_on_failover"), ms.Int("maximum_lag_on_syncnode")
	d.CheckTimeline, d.FailsafeMode = ms.Bool("check_timeline"), ms.Bool("failsafe_mode")
	d.SynchronousMode, d.SynchronousModeStrict = ms.Bool("synchronous_mode"), ms.Bool("synchronous_mode_strict")
	d.SynchronousNodeCount = ms.Int("synchronous_node_count")
	d.PostgreSQL.UsePGRewind, d.PostgreSQL.UseSlots = ms.Bool("use_pg_rewind"), true
	d.PostgreSQL.Parameters = map[string]string{}
	for k, v := range m.spec.Effective() {
		if !slices.Contains(patroniOwned, k) {
			d.PostgreSQL.Parameters[k] = strings.Trim(v, "'")
		}
	}
	cfg.Bootstrap.InitDB = []map[string]string{{"encoding": "UTF8"}, {"locale": "C"}, {"auth-host": "scram-sha-256"}, {"auth-local": "trust"}}
	pg := &cfg.PostgreSQL
	pg.Listen = fmt.Sprintf("%s:%d", ip, Port)
	pg.ConnectAddress = pg.Listen
	pg.DataDir, pg.BinDir = m.dataDir(node), m.bin.Dir
	pg.PGPass = filepath.Join(m.mgrDir(node), "pgpass")
	pg.Auth = map[string]pgAuth{"superuser": {"postgres", m.sec.Superuser}, "replication": {"repl", m.sec.Repl}}
	// No unix socket: sockets are not namespaced, and every node listens
	// on port 5432.
	pg.Parameters = map[string]string{"unix_socket_directories": ""}
	pg.PGHBA = []string{
		"host all all " + m.net.subnet.String() + " scram-sha-256",
		"host replication repl " + m.net.subnet.String() + " scram-sha-256",
	}
	cfg.Watchdog = map[string]string{"mode": "off"}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	// It holds passwords: postgres only, and removed with the data.
	return m.writeOwned(p.configPath(node), string(b))
}

// patroniMember is one member of Patroni's GET /cluster.
type patroniMember struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	State    string `json:"state"`
	Timeline int    `json:"timeline"`
}

type patroniCluster struct {
	Members []patroniMember `json:"members"`
}

var apiClient = &http.Client{Timeout: time.Second}

// view asks every node's Patroni for the cluster as the DCS holds it
// (GET /cluster reads the DCS afresh) and takes the answer most nodes
// give: a node cut off from the DCS's majority cannot answer, or answers
// from its past.
func (p *patroni) view(ctx context.Context) (cluster.ManagerView, error) {
	m := p.m
	type answer struct {
		c   patroniCluster
		err error
	}
	answers := make([]answer, len(m.nodes))
	var wg sync.WaitGroup
	for i, n := range m.nodes {
		if m.Status(n) != cluster.Unknown {
			answers[i].err = fmt.Errorf("%s is %s", n, m.Status(n))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i].c, answers[i].err = getPatroniCluster(ctx, m.net.ipOf[n])
		}()
	}
	wg.Wait()
	votes := map[string]int{}
	byKey := map[string]cluster.ManagerView{}
	var errs []error
	for i, a := range answers {
		if a.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.nodes[i], a.err))
			continue
		}
		v := patroniView(a.c)
		k := v.String()
		votes[k]++
		byKey[k] = v
	}
	if len(votes) == 0 {
		return cluster.ManagerView{}, fmt.Errorf("no Patroni answered: %w", errors.Join(errs...))
	}
	keys := make([]string, 0, len(votes))
	for k := range votes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if votes[keys[i]] != votes[keys[j]] {
			return votes[keys[i]] > votes[keys[j]]
		}
		return byKey[keys[i]].Timeline > byKey[keys[j]].Timeline
	})
	return byKey[keys[0]], nil
}

func getPatroniCluster(ctx context.Context, ip string) (patroniCluster, error) {
	var out patroniCluster
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s:%d/cluster", ip, PatroniAPIPort), nil)
	if err != nil {
		return out, err
	}
	resp, err := apiClient.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET /cluster: %s", resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out, err
}

// patroniView turns GET /cluster into the manager's view: the leader is
// the primary once Patroni reports it running.
func patroniView(c patroniCluster) cluster.ManagerView {
	v := cluster.ManagerView{Nodes: map[string]string{}}
	for _, mb := range c.Members {
		s := mb.Role + "/" + mb.State
		if mb.Timeline > 0 {
			s += fmt.Sprintf(" tl%d", mb.Timeline)
		}
		v.Nodes[mb.Name] = s
		switch mb.Role {
		case "leader":
			if mb.State == "running" {
				v.Primary, v.Timeline = mb.Name, mb.Timeline
			}
		case "sync_standby":
			v.Sync = append(v.Sync, mb.Name)
		}
	}
	sort.Strings(v.Sync)
	return v
}

// healthy: one running leader, every other member running on its
// timeline, as many synchronous standbys as configured (when Patroni
// manages synchronous replication), and every standby streaming from the
// leader in PostgreSQL's own view.
func (p *patroni) healthy(ctx context.Context, v cluster.ManagerView) error {
	m := p.m
	if v.Primary == "" {
		return fmt.Errorf("no running leader")
	}
	var standbys []string
	for _, n := range m.nodes {
		if n == v.Primary {
			continue
		}
		standbys = append(standbys, n)
		s, ok := v.Nodes[n]
		if !ok {
			return fmt.Errorf("%s is not a member", n)
		}
		if !strings.Contains(s, "/running") && !strings.Contains(s, "/streaming") {
			return fmt.Errorf("%s is %s", n, s)
		}
		if !strings.Contains(s, fmt.Sprintf(" tl%d", v.Timeline)) {
			return fmt.Errorf("%s is %s, the leader on timeline %d", n, s, v.Timeline)
		}
	}
	ms := m.spec.Manager
	if ms.Bool("synchronous_mode") {
		if want := min(ms.Int("synchronous_node_count"), len(standbys)); len(v.Sync) < want {
			return fmt.Errorf("%d synchronous standbys (%s), want %d", len(v.Sync), strings.Join(v.Sync, ","), want)
		}
	}
	return streamingSoon(ctx, m, v.Primary, standbys)
}

// streamingSoon says whether every one of standbys streams from primary
// on its timeline within two seconds (nil when they do).
func streamingSoon(ctx context.Context, c cluster.Cluster, primary string, standbys []string) error {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cluster.WaitStreaming(wctx, c, primary, standbys, false)
}
