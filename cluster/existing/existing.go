package existing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
)

// Failover modes the backend knows (the nemesis's --failover values).
const (
	FailoverExternal = "external"
	FailoverNone     = "none"
)

// Options attach the backend to a cluster.
type Options struct {
	// Nodes are the servers; at least three, each with a unique name,
	// address and application_name.
	Nodes []Node
	// Commands are the user's fault commands; CommandTimeout bounds each
	// run of one (default 30 s).
	Commands       Commands
	CommandTimeout time.Duration
	// Schema is where the workloads' tables live: strongcheck_<run>. Up
	// sets it from the run's folder when empty.
	Schema string
	// KeepTables leaves the schema and its tables after the run.
	KeepTables bool
	// ClusterName is the user's name for the cluster, needed for faults
	// when the primary has no cluster_name setting; when both are set
	// they must agree.
	ClusterName string
	// AllowFaults must name the cluster (the primary's cluster_name, or
	// ClusterName) for FaultsPlanned to be accepted: a command copied
	// from another cluster's run cannot aim faults at this one.
	AllowFaults string
	// FaultsPlanned says the run will inject faults.
	FaultsPlanned bool
	// AllowPromote lets strongcheck promote a standby itself (pg_promote)
	// and re-point the others (ALTER SYSTEM SET primary_conninfo and
	// pg_reload_conf), and set synchronous_standby_names when it settles.
	// Without it the cluster's own manager (or nobody) fails over.
	AllowPromote bool
	// Failover is the run's failover mode (external, none, or one of
	// strongcheck's own, which needs AllowPromote).
	Failover string
	// Logf, when set, receives progress lines (never a password).
	Logf func(format string, args ...any)
}

// Cluster is a user's cluster attached by connection strings. It
// implements cluster.Cluster and cluster.SQLObserved; Up wraps it as a
// cluster.Manager unless strongcheck may promote (Options.AllowPromote).
type Cluster struct {
	opts  Options
	nodes []Node
	spec  cluster.Spec
	topo  Topology

	mu      sync.Mutex
	status  map[string]cluster.Role // Down or Paused by our own commands
	cut     map[string][]string     // open partitions: node -> peers
	created bool                    // the schema exists and is ours
	closed  bool
}

// Attach reads the cluster's topology (Discover) and checks it and the
// fault allowance, writing nothing. It is what --dry-run and the CLI's
// early checks use; Up calls it again for each run.
func Attach(ctx context.Context, opts Options) (*Cluster, error) {
	if err := CheckNodes(opts.Nodes); err != nil {
		return nil, err
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 30 * time.Second
	}
	c := &Cluster{opts: opts, nodes: opts.Nodes, status: map[string]cluster.Role{}, cut: map[string][]string{}}
	for _, n := range opts.Nodes {
		c.spec.Nodes = append(c.spec.Nodes, n.Name)
	}
	t, err := Discover(ctx, c)
	c.topo = t
	if err != nil {
		return c, err
	}
	if err := c.checkAllowances(); err != nil {
		return c, err
	}
	p := t.primaryInfo()
	c.spec.Settings = cluster.Settings{"synchronous_standby_names": p.SyncNames, "synchronous_commit": p.SyncCommit}
	return c, nil
}

// checkAllowances refuses faults the user did not allow for this very
// cluster, and strongcheck's own failover without AllowPromote.
func (c *Cluster) checkAllowances() error {
	o := c.opts
	name := c.topo.primaryInfo().ClusterName
	if name != "" && o.ClusterName != "" && name != o.ClusterName {
		return fmt.Errorf("%w: --cluster-name %s, but the primary %s says cluster_name = %q: is this the cluster you meant?", ErrUsage, o.ClusterName, c.topo.Primary, name)
	}
	if name == "" {
		name = o.ClusterName
	}
	if o.FaultsPlanned {
		switch {
		case o.AllowFaults == "":
			return fmt.Errorf("%w: this run injects faults into a cluster strongcheck did not build: allow them with --allow-faults %s (the primary's cluster_name, or --cluster-name when it has none)", ErrUsage, orUnnamed(name))
		case name == "":
			return fmt.Errorf("%w: the primary %s has no cluster_name: name the cluster with --cluster-name NAME and allow faults with --allow-faults NAME", ErrUsage, c.topo.Primary)
		case o.AllowFaults != name:
			return fmt.Errorf("%w: --allow-faults %s does not name this cluster (%s): faults are refused", ErrUsage, o.AllowFaults, name)
		}
	}
	own := o.Failover != "" && o.Failover != FailoverExternal && o.Failover != FailoverNone
	if own && !o.AllowPromote {
		return fmt.Errorf("%w: --failover %s promotes through SQL (pg_promote, ALTER SYSTEM): allow it with --allow-promote, or use --failover external (your manager fails over) or none", ErrUsage, o.Failover)
	}
	if o.AllowPromote {
		for _, n := range c.nodes {
			if n.App != "" && n.App != n.Name {
				return fmt.Errorf("%w: --allow-promote rewrites synchronous_standby_names by node name: %s streams as %q; name the node %s", ErrUsage, n.Name, n.App, n.App)
			}
		}
	}
	return nil
}

func orUnnamed(name string) string {
	if name == "" {
		return "NAME"
	}
	return name
}

// Up attaches to the cluster (Attach) and creates the run's schema on the
// primary. dir is the run's cluster folder; the schema's name comes from
// the run's folder when Options.Schema is empty. The result is a
// cluster.Manager (the cluster's own manager fails over, or nobody does)
// unless Options.AllowPromote.
func Up(ctx context.Context, opts Options, dir string) (cluster.Cluster, error) {
	if opts.Schema == "" {
		opts.Schema = SchemaFor(filepath.Base(filepath.Dir(dir)))
	}
	c, err := Attach(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := c.createSchema(ctx); err != nil {
		return nil, err
	}
	if opts.AllowPromote {
		return c, nil
	}
	return &Managed{Cluster: c}, nil
}

// BackendUp is Up with opts, in the form harness.Backend.Up takes (the
// spec is the user's node list, which opts already hold).
func BackendUp(opts Options) func(ctx context.Context, spec cluster.Spec, dir string) (cluster.Cluster, error) {
	return func(ctx context.Context, _ cluster.Spec, dir string) (cluster.Cluster, error) {
		return Up(ctx, opts, dir)
	}
}

// SchemaFor is the schema of the run whose folder is named run:
// strongcheck_ and the name's letters and digits, lower case.
func SchemaFor(run string) string {
	return "strongcheck_" + strings.Trim(nonIdent.ReplaceAllString(strings.ToLower(run), "_"), "_")
}

var nonIdent = regexp.MustCompile(`[^a-z0-9]+`)

// SchemaSQL are the statements that create and drop the run's schema;
// --dry-run prints them.
func (c *Cluster) SchemaSQL() (create []string, drop string) {
	s := pgx.Identifier{c.opts.Schema}.Sanitize()
	create = []string{"CREATE SCHEMA " + s}
	for _, r := range c.clientRoles() {
		create = append(create, fmt.Sprintf("GRANT USAGE ON SCHEMA %s TO %s", s, pgx.Identifier{r}.Sanitize()))
	}
	return create, "DROP SCHEMA " + s + " CASCADE"
}

// clientRoles are the workload DSNs' roles.
func (c *Cluster) clientRoles() []string {
	var out []string
	for _, n := range c.nodes {
		if n.User != "" && !slices.Contains(out, n.User) {
			out = append(out, n.User)
		}
	}
	return out
}

// ClientRole is the role the workload clients connect as (the first
// node's): the workloads grant their tables to it.
func (c *Cluster) ClientRole() string { return c.nodes[0].User }

func (c *Cluster) createSchema(ctx context.Context) error {
	create, _ := c.SchemaSQL()
	c.logf("creating schema %s on %s", c.opts.Schema, c.topo.Primary)
	if err := cluster.Exec(ctx, c, c.topo.Primary, create...); err != nil {
		return fmt.Errorf("create the run's schema: %w", err)
	}
	c.mu.Lock()
	c.created = true
	c.mu.Unlock()
	return nil
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// Topology is what discovery found when the cluster was attached.
func (c *Cluster) Topology() Topology { return c.topo }

// Discovery implements cluster.Discovered.
func (c *Cluster) Discovery() (cluster.Settings, string) {
	p := c.topo.primaryInfo()
	s := cluster.Settings{"synchronous_standby_names": p.SyncNames, "synchronous_commit": p.SyncCommit,
		"cluster_name": p.ClusterName, "server_version": p.ServerVersion}
	return s, c.topo.Summary()
}

// PostgresVersion is the primary's server_version when attached.
func (c *Cluster) PostgresVersion() string { return c.topo.primaryInfo().ServerVersion }

// Backend implements cluster.Cluster.
func (c *Cluster) Backend() string { return "existing" }

// Spec implements cluster.Cluster: the node names and the primary's
// replication settings as discovered.
func (c *Cluster) Spec() cluster.Spec { return c.spec }

// Nodes implements cluster.Cluster.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.spec.Nodes...) }

func (c *Cluster) node(name string) (Node, bool) {
	for _, n := range c.nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// ConnString implements cluster.Cluster: the user's DSN with the run's
// search_path, application_name=strongcheck when it sets none, and the
// password from the node's variable when set (else PGPASSWORD or the
// pgpass file apply). It may hold a password: never log or store it.
func (c *Cluster) ConnString(node string, admin bool) string {
	n, _ := c.node(node)
	dsn := n.DSN
	if admin {
		dsn = n.Admin()
	}
	var kv [][2]string
	if c.opts.Schema != "" {
		kv = append(kv, [2]string{"search_path", c.opts.Schema})
	}
	if !strings.Contains(dsn, "application_name") {
		kv = append(kv, [2]string{"application_name", "strongcheck"})
	}
	pw, ok := os.LookupEnv(PasswordVar(node, admin && n.AdminDSN != ""))
	if ok {
		kv = append(kv, [2]string{"password", pw})
	}
	return withParams(dsn, kv)
}

// vars are a node's template fields.
func (c *Cluster) vars(node string) map[string]string {
	n, _ := c.node(node)
	return map[string]string{"node": n.Name, "host": n.Host, "port": strconv.Itoa(int(n.Port))}
}

// Command expands verb's template for node; peers fill {peers} and
// {peer_hosts}, primary the {primary...} fields.
func (c *Cluster) Command(verb, node string, peers []string, primary string) (string, error) {
	if _, ok := c.node(node); !ok {
		return "", fmt.Errorf("%w: no node %q", ErrUsage, node)
	}
	v := c.vars(node)
	if peers != nil {
		var hosts []string
		for _, p := range peers {
			pn, _ := c.node(p)
			hosts = append(hosts, pn.Host)
		}
		v["peers"], v["peer_hosts"] = strings.Join(peers, " "), strings.Join(hosts, " ")
	}
	if primary != "" {
		pn, _ := c.node(primary)
		v["primary"], v["primary_host"], v["primary_port"] = pn.Name, pn.Host, strconv.Itoa(int(pn.Port))
	}
	return c.opts.Commands.Expand(verb, v)
}

// run expands and runs verb's command for node.
func (c *Cluster) run(ctx context.Context, verb, node string, peers []string, primary string) error {
	cmd, err := c.Command(verb, node, peers, primary)
	if err != nil {
		return err
	}
	c.logf("%s %s: %s", verb, node, cmd)
	if _, err := RunCommand(ctx, cmd, c.opts.CommandTimeout); err != nil {
		return fmt.Errorf("%s %s: %w", verb, node, err)
	}
	return nil
}

func (c *Cluster) setStatus(node string, r cluster.Role) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r == cluster.Unknown {
		delete(c.status, node)
		return
	}
	c.status[node] = r
}

// act runs verb's command for node and, when it succeeded, records what
// the node is now (Unknown: running, ask the server).
func (c *Cluster) act(ctx context.Context, verb, node string, now cluster.Role) error {
	if err := c.run(ctx, verb, node, nil, ""); err != nil {
		return err
	}
	c.setStatus(node, now)
	return nil
}

// Kill implements cluster.Cluster with the kill command.
func (c *Cluster) Kill(ctx context.Context, node string) error {
	return c.act(ctx, VerbKill, node, cluster.Down)
}

// Start implements cluster.Cluster with the start command.
func (c *Cluster) Start(ctx context.Context, node string) error {
	return c.act(ctx, VerbStart, node, cluster.Unknown)
}

// Stop implements cluster.Cluster with the stop command.
func (c *Cluster) Stop(ctx context.Context, node string) error {
	return c.act(ctx, VerbStop, node, cluster.Down)
}

// Pause implements cluster.Cluster with the pause command.
func (c *Cluster) Pause(ctx context.Context, node string) error {
	return c.act(ctx, VerbPause, node, cluster.Paused)
}

// Resume implements cluster.Cluster with the resume command.
func (c *Cluster) Resume(ctx context.Context, node string) error {
	return c.act(ctx, VerbResume, node, cluster.Unknown)
}

// Partition implements cluster.Cluster: the partition command runs once
// per node the grudge names first, with the nodes it is cut from as
// {peers}; an open partition is healed first.
func (c *Cluster) Partition(ctx context.Context, g cluster.Grudge) error {
	if err := c.Heal(ctx); err != nil {
		return err
	}
	keys := make([]string, 0, len(g))
	for k := range g {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		peers := slices.DeleteFunc(slices.Clone(g[k]), func(p string) bool { return p == k })
		if len(peers) == 0 {
			continue
		}
		sort.Strings(peers)
		// Recorded before it runs: a command that fails half-way may
		// have cut something, and the heal must run for it.
		c.mu.Lock()
		c.cut[k] = peers
		c.mu.Unlock()
		if err := c.run(ctx, VerbPartition, k, peers, ""); err != nil {
			return err
		}
	}
	return nil
}

// Heal implements cluster.Cluster: the heal command for every node cut
// off by Partition; nothing when none is.
func (c *Cluster) Heal(ctx context.Context) error {
	c.mu.Lock()
	open := maps.Clone(c.cut)
	c.mu.Unlock()
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(open)) {
		if err := c.run(ctx, VerbHeal, k, open[k], ""); err != nil {
			errs = append(errs, err)
			continue
		}
		c.mu.Lock()
		delete(c.cut, k)
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Status implements cluster.Cluster: Down after kill or stop, Paused after
// pause, by this backend's own commands; otherwise Unknown (ask the
// server: the user's manager may have started a node meanwhile).
func (c *Cluster) Status(node string) cluster.Role {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.status[node]; ok {
		return r
	}
	return cluster.Unknown
}

// Follow implements cluster.Cluster, only with Options.AllowPromote: it
// rewrites host and port of standby's primary_conninfo to primary's (the
// replication role, its password and application_name stay as the user
// set them) with ALTER SYSTEM and reloads.
func (c *Cluster) Follow(ctx context.Context, standby, primary string) error {
	if !c.opts.AllowPromote {
		return fmt.Errorf("%w: re-pointing %s at %s needs --allow-promote", ErrUsage, standby, primary)
	}
	var cur string
	err := cluster.WithAdminConn(ctx, c, standby, func(ctx context.Context, conn *pgx.Conn) error {
		return conn.QueryRow(ctx, "SHOW primary_conninfo").Scan(&cur)
	})
	if err != nil {
		return fmt.Errorf("follow: read %s's primary_conninfo: %w", standby, err)
	}
	p, _ := c.node(primary)
	next := setConninfo(cur, map[string]string{"host": p.Host, "port": strconv.Itoa(int(p.Port))})
	if err := cluster.AlterSystem(ctx, c.ConnString(standby, true), "primary_conninfo", next); err != nil {
		return fmt.Errorf("follow: %s: %w", standby, err)
	}
	return nil
}

// setConninfo replaces (or adds) keys in a key=value conninfo.
func setConninfo(conninfo string, set map[string]string) string {
	var out []string
	for _, f := range strings.Fields(conninfo) {
		k, _, _ := strings.Cut(f, "=")
		if _, ok := set[k]; ok {
			continue
		}
		out = append(out, f)
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		out = append(out, k+"="+set[k])
	}
	return strings.Join(out, " ")
}

// Rejoin implements cluster.Cluster with the rejoin command, then waits
// until node answers. Without a rejoin command it starts node when this
// backend stopped it and fails, saying that node is left as the cluster's
// manager leaves it: strongcheck runs no pg_rewind on a user's machine.
func (c *Cluster) Rejoin(ctx context.Context, node, primary string) error {
	if _, ok := c.opts.Commands[VerbRejoin]; !ok {
		if c.Status(node) == cluster.Down {
			if err := c.Start(ctx, node); err != nil {
				return err
			}
		}
		return fmt.Errorf("no --fault-cmd rejoin=...: %s was only started, not rewound; it is left as your manager leaves it (pg_rewind it from %s and make it a standby by hand if nothing does)", node, primary)
	}
	if err := c.run(ctx, VerbRejoin, node, nil, primary); err != nil {
		return err
	}
	c.setStatus(node, cluster.Unknown)
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		if _, err := cluster.QueryState(wctx, c.ConnString(node, true)); err == nil {
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("rejoin %s: it does not answer within 60 s after the rejoin command", node)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// CollectLogs implements cluster.Cluster: the server logs are on the
// user's machines, out of reach; it writes a note saying so.
func (c *Cluster) CollectLogs(_ context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	note := "The existing backend does not collect server logs: they are on your machines.\n"
	return os.WriteFile(filepath.Join(dir, "README.txt"), []byte(note), 0o644)
}

// ApplicationName implements cluster.SQLObserved.
func (c *Cluster) ApplicationName(node string) string {
	n, _ := c.node(node)
	return n.AppName()
}

// ObserveWithin implements cluster.SQLObserved: a cut standby shows as
// cut at once (it receives no new WAL), but a healed one reconnects only
// after its WAL receiver gives up on the old connection and retries
// (wal_receiver_timeout, wal_retrieve_retry_interval).
func (c *Cluster) ObserveWithin() time.Duration { return 30 * time.Second }
