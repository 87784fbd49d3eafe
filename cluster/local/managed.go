package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
)

// ManagedCluster is a local cluster run by an HA manager (Patroni with
// etcd, or pg_auto_failover): the manager's processes run as the postgres
// user in the nodes' namespaces (and, for pg_auto_failover, a monitor in a
// namespace of its own), the manager bootstraps PostgreSQL from its own
// configuration, and it alone promotes and rejoins nodes. Faults act on
// the nodes as on any local cluster: Kill crashes every process of the
// node (PostgreSQL, the manager's agent and the node's DCS member),
// partitions are nftables rules in the nodes' namespaces and so cut the
// DCS and the monitor too. It implements cluster.Cluster and
// cluster.Manager.
type ManagedCluster struct {
	*Cluster
	fl flavor
	// agents are every node's manager processes in start order; the
	// monitor's under cluster.AutoFailoverMonitor.
	agents map[string][]*agent
}

var (
	_ cluster.Cluster = (*ManagedCluster)(nil)
	_ cluster.Manager = (*ManagedCluster)(nil)
)

// ErrManaged is returned by the operations the manager performs itself.
var ErrManaged = errors.New("the HA manager does this itself")

// ErrManagerStart wraps a manager that did not bring the cluster up.
var ErrManagerStart = errors.New("HA manager did not bring the cluster up")

// flavor is one HA manager's part of a ManagedCluster.
type flavor interface {
	// describe is the manager's name and versions, e.g. "patroni 3.0.2 (etcd 3.4.23)".
	describe() string
	// extra are the namespaces the manager needs beside the nodes'.
	extra() []string
	// provision writes the manager's configuration, starts its
	// infrastructure and every node, and returns once the manager has
	// bootstrapped the spec's first node as primary.
	provision(ctx context.Context) error
	// startNode starts node's agents (its DCS member first).
	startNode(ctx context.Context, node string) error
	// view asks the manager.
	view(ctx context.Context) (cluster.ManagerView, error)
	// healthy says why v is not yet a healthy cluster (nil when it is).
	healthy(ctx context.Context, v cluster.ManagerView) error
}

// UpManaged builds a cluster run by opts.Spec.Manager. On failure it tears
// down what it built and returns the reason with the manager's log tail.
func UpManaged(ctx context.Context, opts Options) (m *ManagedCluster, err error) {
	t0 := time.Now()
	spec := opts.Spec.Manager
	if !spec.Managed() {
		return nil, fmt.Errorf("%w: UpManaged needs a manager", cluster.ErrSpec)
	}
	if err := ManagerPreflight(spec.Name); err != nil {
		return nil, err
	}
	m = &ManagedCluster{agents: map[string][]*agent{}}
	switch spec.Name {
	case cluster.ManagerPatroni:
		m.fl = &patroni{m: m}
	case cluster.ManagerAutoFailover:
		m.fl = &autoFailover{m: m}
	default:
		return nil, fmt.Errorf("%w: unknown manager %q", cluster.ErrSpec, spec.Name)
	}
	c, tmpl, err := begin(ctx, opts, m.fl.extra())
	if err != nil {
		return nil, err
	}
	m.Cluster = c
	// The managers create, move and remove data directories themselves
	// (pg_autoctl clones a standby beside its folder and renames it): the
	// data folder, outside the store and private, is postgres's.
	if err := os.Chown(dataRoot(c.net.id), int(c.user.uid), int(c.user.gid)); err != nil {
		return m, fmt.Errorf("data folder: %w", err)
	}
	if af, ok := m.fl.(*autoFailover); ok {
		af.tmpl = tmpl
	}
	defer func() {
		if err != nil {
			if cerr := m.Close(context.WithoutCancel(ctx)); cerr != nil {
				err = fmt.Errorf("%w (and tearing down: %v)", err, cerr)
			}
			m = nil
		}
	}()
	if err := m.fl.provision(ctx); err != nil {
		return m, fmt.Errorf("%w: %s: %w", ErrManagerStart, m.fl.describe(), err)
	}
	hctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if _, err := m.AwaitHealthy(hctx); err != nil {
		return m, fmt.Errorf("%w: %s: %w%s", ErrManagerStart, m.fl.describe(), err, m.logTails())
	}
	if err := m.bootstrapRoles(ctx); err != nil {
		return m, err
	}
	if c.spec.LinkRate != "" {
		if err := m.ShapeLinks(ctx, c.spec.LinkRate); err != nil {
			return m, fmt.Errorf("network: link rate: %w", err)
		}
	}
	if err := c.writeState(); err != nil {
		return m, err
	}
	c.UpDuration = time.Since(t0)
	c.logf("cluster up in %.2fs under %s, subnet %s", c.UpDuration.Seconds(), m.fl.describe(), c.net.subnet)
	return m, nil
}

// ManagerPreflight names the packages a manager needs that are missing
// (wrapping ErrNoTool), nil when all are there.
func ManagerPreflight(name string) error {
	need := map[string][][2]string{
		cluster.ManagerPatroni:      {{"patroni", "patroni python3-etcd"}, {"etcd", "etcd-server"}, {"tini", "tini"}},
		cluster.ManagerAutoFailover: {{"pg_autoctl", "pg-auto-failover-cli postgresql-15-auto-failover"}, {"tini", "tini"}},
	}[name]
	var missing []string
	for _, t := range need {
		if _, err := exec.LookPath(t[0]); err != nil {
			missing = append(missing, fmt.Sprintf("%s (apt-get install %s)", t[0], t[1]))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: --manager %s needs %s; scripts/install-deps.sh --managers installs them", ErrNoTool, name, strings.Join(missing, ", "))
	}
	return nil
}

// bootstrapRoles creates the workload role on the primary the manager
// bootstrapped (its password sent as a SCRAM verifier), committing
// locally: the manager's own roles exist already.
func (m *ManagedCluster) bootstrapRoles(ctx context.Context) error {
	v, err := m.fl.view(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	stmts := []string{
		"SET synchronous_commit = local",
		fmt.Sprintf("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s WITH LOGIN; END IF; END $$", UserName),
		fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", UserName, scramVerifier(m.sec.User)),
		fmt.Sprintf("GRANT CREATE ON SCHEMA public TO %s", UserName),
	}
	if err := cluster.Exec(ctx, m, v.Primary, stmts...); err != nil {
		return fmt.Errorf("bootstrap %s: %w", v.Primary, err)
	}
	return nil
}

// record adds a started agent to the registry, so that a crashed harness's
// agents are swept by the next run.
func (m *ManagedCluster) record(a *agent, dataDir string) error {
	m.entryMu.Lock()
	defer m.entryMu.Unlock()
	if m.entry.Agents == nil {
		m.entry.Agents = map[string]agentRecord{}
	}
	m.entry.Agents[a.name] = agentRecord{PID: a.pid(), Marker: a.marker, DataDir: dataDir}
	return m.entry.save()
}

// forget removes an agent that has exited from the registry.
func (m *ManagedCluster) forget(a *agent) {
	m.entryMu.Lock()
	defer m.entryMu.Unlock()
	delete(m.entry.Agents, a.name)
	_ = m.entry.save()
}

// launch starts one agent of node (or the monitor) and records it.
func (m *ManagedCluster) launch(node string, a *agent, dataDir string, env, argv []string) error {
	ns := m.net.nsOf[node]
	if err := a.start(ns, m.user, env, argv); err != nil {
		return err
	}
	return m.record(a, dataDir)
}

// agentEnv is the environment every agent runs with.
func (m *ManagedCluster) agentEnv(home string) []string {
	return []string{"LANG=C.UTF-8", "LC_ALL=C.UTF-8", "HOME=" + home, "PATH=" + m.bin.Dir + ":/usr/bin:/bin"}
}

// mgrDir is node's folder for the manager's files (configuration, DCS
// data, pgpass), owned by postgres, in the cluster's private data folder
// (never in the store: the configuration holds passwords); it is removed
// with the data.
func (m *ManagedCluster) mgrDir(node string) string {
	return filepath.Join(dataRoot(m.net.id), node+".mgr")
}

// ownedDir creates dir for the postgres user, mode 0700.
func (m *ManagedCluster) ownedDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chown(dir, int(m.user.uid), int(m.user.gid))
}

// Manager implements cluster.Manager.
func (m *ManagedCluster) Manager() string { return m.fl.describe() }

// View implements cluster.Manager.
func (m *ManagedCluster) View(ctx context.Context) (cluster.ManagerView, error) {
	return m.fl.view(ctx)
}

// AwaitFailover implements cluster.Manager.
func (m *ManagedCluster) AwaitFailover(ctx context.Context, old string) (cluster.ManagerView, error) {
	var last cluster.ManagerView
	var lastErr error
	for {
		v, err := m.fl.view(ctx)
		if err == nil {
			last = v
			if v.Primary != "" && v.Primary != old {
				st, qerr := cluster.QueryState(ctx, m.ConnString(v.Primary, true))
				if qerr == nil && st.Role == string(cluster.Primary) {
					// The manager's record of the timeline lags the
					// promotion; the server's own is the new one.
					v.Timeline = max(v.Timeline, st.Timeline)
					return v, nil
				}
				lastErr = fmt.Errorf("%s named %s primary, which is not out of recovery yet (%v)", m.fl.describe(), v.Primary, qerr)
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("no new primary from %s: %w (last view: %s; last error: %v)", m.fl.describe(), ctx.Err(), last, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// AwaitHealthy implements cluster.Manager.
func (m *ManagedCluster) AwaitHealthy(ctx context.Context) (cluster.ManagerView, error) {
	var last cluster.ManagerView
	var why error
	for {
		v, err := m.fl.view(ctx)
		if err == nil {
			last = v
			why = m.fl.healthy(ctx, v)
			if why == nil {
				return v, nil
			}
		} else {
			why = err
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("not healthy: %w (last view: %s; %v)", ctx.Err(), last, why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Kill implements cluster.Cluster: the node crashes, every process of it
// (PostgreSQL, the manager's agent, the node's DCS member) frozen and
// SIGKILLed at once; it returns when all are gone.
func (m *ManagedCluster) Kill(ctx context.Context, node string) error {
	as, err := m.nodeAgents(node)
	if err != nil {
		return err
	}
	return crashAgents(as)
}

// Start implements cluster.Cluster: it starts the node's manager processes
// (the manager starts PostgreSQL, rewinding a former primary first) and
// waits until PostgreSQL accepts connections.
func (m *ManagedCluster) Start(ctx context.Context, node string) error {
	if _, err := m.nodeAgents(node); err != nil {
		return err
	}
	if err := m.fl.startNode(ctx, node); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if _, err := cluster.QueryState(wctx, m.ConnString(node, true)); err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%w: %s: PostgreSQL does not accept connections under %s: %v%s", ErrNodeStart, node, m.fl.describe(), wctx.Err(), m.logTails(node))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Stop implements cluster.Cluster: a clean shutdown of the node's agents
// (the manager stops PostgreSQL first), the node's own agent before its
// DCS member.
func (m *ManagedCluster) Stop(ctx context.Context, node string) error {
	as, err := m.nodeAgents(node)
	if err != nil {
		return err
	}
	rev := slices.Clone(as)
	slices.Reverse(rev)
	return stopAgents(rev, 30*time.Second)
}

// Pause implements cluster.Cluster: every process of the node stops.
func (m *ManagedCluster) Pause(ctx context.Context, node string) error {
	as, err := m.nodeAgents(node)
	if err != nil {
		return err
	}
	return pauseAgents(as)
}

// Resume implements cluster.Cluster.
func (m *ManagedCluster) Resume(ctx context.Context, node string) error {
	as, err := m.nodeAgents(node)
	if err != nil {
		return err
	}
	for _, a := range as {
		resumeAgent(a)
	}
	return nil
}

// Status implements cluster.Cluster: Down when none of the node's agents
// runs, Paused when paused, else Unknown (ask the server).
func (m *ManagedCluster) Status(node string) cluster.Role {
	up := false
	for _, a := range m.agents[node] {
		if a.running() {
			up = true
			a.mu.Lock()
			p := a.paused
			a.mu.Unlock()
			if p {
				return cluster.Paused
			}
		}
	}
	if !up {
		return cluster.Down
	}
	return cluster.Unknown
}

// Partition implements cluster.Cluster. A node cut from every other node
// is cut from the manager's monitor too (the monitor is on the majority's
// side); the DCS members live in the nodes' namespaces and are cut with
// them.
func (m *ManagedCluster) Partition(ctx context.Context, g cluster.Grudge) error {
	mon := slices.Contains(m.fl.extra(), cluster.AutoFailoverMonitor)
	if !mon {
		return m.Cluster.Partition(ctx, g)
	}
	peers := map[string]map[string]bool{}
	for _, p := range g.Pairs() {
		for i := range 2 {
			if peers[p[i]] == nil {
				peers[p[i]] = map[string]bool{}
			}
			peers[p[i]][p[1-i]] = true
		}
	}
	out := cluster.Grudge{}
	for k, v := range g {
		out[k] = slices.Clone(v)
	}
	for n, cut := range peers {
		if len(cut) == len(m.nodes)-1 {
			out[n] = append(out[n], cluster.AutoFailoverMonitor)
			m.appendLog(n, fmt.Sprintf("strongcheck: %s cut from every node and from the monitor\n", n))
		}
	}
	return m.Cluster.Partition(ctx, out)
}

// ShapeLinks implements cluster.LinkShaper for PostgreSQL's traffic
// between the nodes only: the monitor's links and the etcd members'
// traffic are not congested. A congested monitor link fails its health
// checks, and Patroni, its etcd requests timing out behind the WAL stream,
// demotes itself ("DCS is not accessible"): each starts a failover of a
// primary that is alive, which is another test.
func (m *ManagedCluster) ShapeLinks(ctx context.Context, rate string) error {
	if err := (cluster.Spec{LinkRate: rate}).Validate(); err != nil {
		return err
	}
	nodes := *m.net
	nodes.nsOf, nodes.ipOf = map[string]string{}, map[string]string{}
	for _, n := range m.nodes {
		nodes.nsOf[n], nodes.ipOf[n] = m.net.nsOf[n], m.net.ipOf[n]
	}
	return nodes.shape(ctx, rate, Port)
}

// Follow implements cluster.Cluster: the manager points standbys.
func (m *ManagedCluster) Follow(ctx context.Context, standby, primary string) error {
	return fmt.Errorf("%w: follow %s", ErrManaged, primary)
}

// Rejoin implements cluster.Cluster: the manager rejoins former primaries
// (with pg_rewind where configured); start the node instead.
func (m *ManagedCluster) Rejoin(ctx context.Context, node, primary string) error {
	return fmt.Errorf("%w: rejoin %s", ErrManaged, node)
}

// CollectLogs implements cluster.Cluster: every log of the cluster folder,
// the manager's (etcd members, monitor) included.
func (m *ManagedCluster) CollectLogs(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := filepath.Join(m.opts.Dir, "logs")
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	var errs []error
	copyLog := func(from, to string) {
		b, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(to, b, 0o644)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, e := range ents {
		if !e.IsDir() {
			copyLog(filepath.Join(src, e.Name()), filepath.Join(dir, e.Name()))
		}
	}
	// Servers that log inside their data directory (pg_auto_failover's).
	for _, n := range append(append([]string(nil), m.nodes...), m.fl.extra()...) {
		copyLog(filepath.Join(m.dataDir(n), "log", "postgresql.log"), filepath.Join(dir, n+"-postgres.log"))
	}
	return errors.Join(errs...)
}

// Close implements cluster.Cluster: it crashes every agent (and with it
// every server), waits until every process has vanished, then tears down
// the network, the data and the registry entry.
func (m *ManagedCluster) Close(ctx context.Context) error {
	var all []*agent
	for _, as := range m.agents {
		all = append(all, as...)
	}
	if err := crashAgents(all); err != nil {
		return fmt.Errorf("tear down %s: %w", m.fl.describe(), err)
	}
	if m.Cluster == nil {
		return nil
	}
	return m.Cluster.Close(ctx)
}

func (m *ManagedCluster) nodeAgents(node string) ([]*agent, error) {
	if !slices.Contains(m.nodes, node) {
		return nil, fmt.Errorf("%w: no node %q (nodes: %s)", cluster.ErrSpec, node, strings.Join(m.nodes, ", "))
	}
	return m.agents[node], nil
}

// newAgent registers an agent of node (or the monitor) logging to
// logs/<node><suffix>.log.
func (m *ManagedCluster) newAgent(node, role, suffix, marker string) *agent {
	a := &agent{name: node + "/" + role, logPath: filepath.Join(m.opts.Dir, "logs", node+suffix+".log"), marker: marker}
	m.agents[node] = append(m.agents[node], a)
	return a
}

// logTails is the end of each agent's log (of the nodes given, or all).
func (m *ManagedCluster) logTails(nodes ...string) string {
	var b strings.Builder
	seen := map[string]bool{}
	for node, as := range m.agents {
		if len(nodes) > 0 && !slices.Contains(nodes, node) {
			continue
		}
		for _, a := range as {
			if seen[a.logPath] {
				continue
			}
			seen[a.logPath] = true
			fmt.Fprintf(&b, "\n--- %s (%s):\n%s", a.name, filepath.Base(a.logPath), tail(a.logPath, 12))
		}
	}
	return b.String()
}

// Processes implements cluster.Inspector for a node run by a manager: the
// node is every process of its agents' trees (the manager, its DCS member,
// PostgreSQL and their children) and the postmaster its data directory
// names, which may have left the agent's tree. Postmaster says whether that
// postmaster lives.
func (m *ManagedCluster) Processes(ctx context.Context, node string) (cluster.ProcessState, error) {
	as, err := m.nodeAgents(node)
	if err != nil {
		return cluster.ProcessState{}, err
	}
	var ps cluster.ProcessState
	seen := map[int]bool{}
	count := func(p int) bool {
		if seen[p] {
			return procState(p) != 0
		}
		seen[p] = true
		switch procState(p) {
		case 0, 'Z', 'X':
			return false
		case 'T', 't':
			ps.Stopped++
		default:
			ps.Running++
		}
		return true
	}
	for _, a := range as {
		if pid := a.pid(); pid > 0 && a.running() && count(pid) {
			for _, d := range descendants(pid) {
				count(d)
			}
		}
	}
	if pm := postmasterPID(m.dataDir(node)); pm > 0 && isOurPostmaster(pm, m.dataDir(node)) {
		ps.Postmaster = count(pm)
		for _, k := range children(pm) {
			count(k)
		}
	}
	return ps, nil
}
