// Package local is the cluster backend that runs real PostgreSQL servers on
// this machine: each node is a postmaster started from the system's binaries
// as the unprivileged postgres user, inside its own network namespace on a
// bridge of the cluster's own. Kill and pause are signals to the node's
// processes, partitions are nftables rules inside the namespaces.
//
// It needs root, iproute2, util-linux's nsenter, nftables and PostgreSQL;
// Preflight and FindBinaries name what is missing. The cluster folder holds
// only logs and cluster.json, nothing secret: the passwords live in a
// runtime folder under /run/strongcheck and the data folders under
// /var/lib/strongcheck, both private to the cluster (paths.go). Everything
// it creates outside the cluster folder (namespaces, bridge, veths,
// servers, those folders) is recorded in a registry under /run/strongcheck,
// so that a cluster left by a crashed or killed harness is found and removed
// by the next Up or Down, by the names and PIDs it owns and only those.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/strongcheck/strongcheck/cluster"
)

// DefaultSubnet is the network the CLI uses when none is given. The subnet
// exists only on this cluster's bridge and inside its namespaces.
const DefaultSubnet = "10.213.0.0/24"

// AutoSubnet asks Up to choose a free 10.213.X.0/24 (tests running in
// parallel each get their own).
const AutoSubnet = "auto"

// Port every node listens on (inside its own namespace).
const Port = 5432

// Workload user and database.
const (
	UserName = "strongcheck"
	DBName   = "postgres"
)

// Options configure Up.
type Options struct {
	// Dir is the cluster's folder: logs/<node>.log and cluster.json
	// (what Attach and Down need; no password). It is created when
	// missing and may have any mode: the servers never open it (their
	// data and passfile live in folders of their own, see paths.go).
	Dir string
	// Subnet is an IPv4 CIDR (DefaultSubnet when empty, AutoSubnet to
	// choose a free one).
	Subnet string
	Spec   cluster.Spec
	// Detached marks a cluster that outlives this process (`cluster up`);
	// call Detach instead of Close when done with it.
	Detached bool
	// Logf, when set, receives progress lines (never a password).
	Logf func(format string, args ...any)
}

// Cluster is a running local cluster. It implements cluster.Cluster.
type Cluster struct {
	opts     Options
	spec     cluster.Spec
	nodes    []string
	bin      Binaries
	user     pgUser
	net      *network
	sec      secrets
	entry    *entry
	lock     *ownerLock
	servers  map[string]*server
	attached bool     // Attach'ed: no process control
	extra    []string // namespaces beside the nodes' (an HA manager's monitor)

	entryMu sync.Mutex
	closeMu sync.Mutex
	closed  bool
	// UpDuration is how long Up took.
	UpDuration time.Duration
}

var _ cluster.Cluster = (*Cluster)(nil)

// state is the cluster.json of a cluster folder: what Attach and Down need,
// no passwords.
type state struct {
	ID       string            `json:"id"`
	Subnet   string            `json:"subnet"`
	Nodes    []string          `json:"nodes"`
	Addrs    map[string]string `json:"addrs"`
	Settings cluster.Settings  `json:"settings"`
	Version  string            `json:"postgres_version"`
	Detached bool              `json:"detached"`
	// DataDir is where the nodes' data folders are (DataDir/<id>).
	DataDir string `json:"data_dir,omitempty"`
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Logf != nil {
		c.opts.Logf(format, args...)
	}
}

// begin does what every local cluster needs before its servers start:
// checks, the registry entry, the folder, the network (the nodes' and the
// extra namespaces, e.g. a manager's monitor), the cached initdb template
// and the cluster's secrets. On failure it tears down what it built.
func begin(ctx context.Context, opts Options, extra []string) (c *Cluster, tmpl template, err error) {
	if err := opts.Spec.Validate(); err != nil {
		return nil, tmpl, err
	}
	if err := Preflight(); err != nil {
		return nil, tmpl, err
	}
	bin, err := FindBinaries()
	if err != nil {
		return nil, tmpl, err
	}
	u, err := lookupPGUser()
	if err != nil {
		return nil, tmpl, err
	}
	if opts.Dir == "" {
		return nil, tmpl, fmt.Errorf("%w: no cluster folder given", cluster.ErrSpec)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, tmpl, err
	}
	opts.Dir = dir
	if opts.Subnet == "" {
		opts.Subnet = DefaultSubnet
	}
	if _, err := Sweep(); err != nil {
		return nil, tmpl, fmt.Errorf("clean up after an earlier run: %w", err)
	}
	if err := prepareDir(dir); err != nil {
		return nil, tmpl, err
	}
	c = &Cluster{opts: opts, spec: opts.Spec, nodes: opts.Spec.NodeNames(), bin: bin, user: u,
		sec: newSecrets(), servers: map[string]*server{}, extra: extra}
	if err := c.register(); err != nil {
		return nil, tmpl, err
	}
	defer func() {
		if err != nil {
			cerr := c.Close(context.WithoutCancel(ctx))
			if cerr != nil {
				err = fmt.Errorf("%w (and tearing down: %v)", err, cerr)
			}
			c = nil
		}
	}()
	if err := makePrivateDirs(c.net.id, u); err != nil {
		return c, tmpl, err
	}
	if err := c.net.up(ctx, append(append([]string(nil), c.nodes...), extra...)); err != nil {
		return c, tmpl, fmt.Errorf("network: %w", err)
	}
	if tmpl, err = ensureTemplate(ctx, bin, u); err != nil {
		return c, tmpl, err
	}
	if err := writeSecrets(c.net.id, c.sec, c.user); err != nil {
		return c, tmpl, err
	}
	return c, tmpl, nil
}

// Up builds and starts the cluster: the network, one primary (the spec's
// first node) and streaming standbys, with every standby attached as sync
// or quorum when the sync list asks for it. On failure it tears down what
// it built and returns the reason (a node's log tail when a node fails).
func Up(ctx context.Context, opts Options) (c *Cluster, err error) {
	if opts.Spec.Manager.Managed() {
		return nil, fmt.Errorf("%w: a cluster run by %s is built by UpManaged", cluster.ErrSpec, opts.Spec.Manager.Name)
	}
	t0 := time.Now()
	c, tmpl, err := begin(ctx, opts, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			cerr := c.Close(context.WithoutCancel(ctx))
			if cerr != nil {
				err = fmt.Errorf("%w (and tearing down: %w)", err, cerr)
			}
			c = nil
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for i, n := range c.nodes {
		g.Go(func() error {
			dd := c.dataDir(n)
			if err := copyDir(gctx, tmpl.dir, dd); err != nil {
				return err
			}
			return c.configure(n, i == 0)
		})
	}
	if err := g.Wait(); err != nil {
		return c, err
	}
	primary := c.nodes[0]
	if err := c.startNode(ctx, primary); err != nil {
		return c, err
	}
	if err := c.bootstrap(ctx, primary, tmpl.password); err != nil {
		return c, err
	}
	g, gctx = errgroup.WithContext(ctx)
	for _, n := range c.nodes[1:] {
		g.Go(func() error { return c.startNode(gctx, n) })
	}
	if err := g.Wait(); err != nil {
		return c, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	syncNeeded := c.spec.SyncStandbyNames() != ""
	if err := cluster.WaitStreaming(wctx, c, primary, c.nodes[1:], syncNeeded); err != nil {
		return c, err
	}
	// The links are shaped once the standbys stream: the limit is a
	// condition of the test, not of provisioning.
	if c.spec.LinkRate != "" {
		if err := c.net.shape(ctx, c.spec.LinkRate, 0); err != nil {
			return c, fmt.Errorf("network: link rate: %w", err)
		}
	}
	if err := c.writeState(); err != nil {
		return c, err
	}
	c.UpDuration = time.Since(t0)
	c.logf("cluster up in %.2fs: %s primary, %s standbys, subnet %s", c.UpDuration.Seconds(), primary, strings.Join(c.nodes[1:], ", "), c.net.subnet)
	return c, nil
}

// prepareDir makes dir a cluster folder: it refuses one whose cluster is
// still up and removes what an older strongcheck kept there (data, secrets).
func prepareDir(dir string) error {
	if st, err := readState(dir); err == nil {
		if e, err := loadEntry(entryPath(st.ID)); err == nil {
			if e.Detached {
				return fmt.Errorf("%w: %s (run `strongcheck cluster down --dir %s` first)", ErrAlreadyUp, dir, dir)
			}
			if l, ok, _ := lockEntry(e.ID); !ok {
				return fmt.Errorf("%w: %s is in use by process %d", ErrAlreadyUp, dir, e.Owner)
			} else {
				l.release()
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return fmt.Errorf("cluster folder: %w", err)
	}
	if err := removeOldLayout(dir); err != nil {
		return fmt.Errorf("cluster folder: %w", err)
	}
	return nil
}

// removeOldLayout removes the secrets and data folders an older strongcheck
// kept inside the cluster folder dir: secrets.json, data/pgpass and
// data/<node> (only folders that are PostgreSQL data folders, so that a
// data folder of the user's own in a --dir of theirs is left alone).
func removeOldLayout(dir string) error {
	var errs []error
	for _, f := range []string{filepath.Join(dir, "secrets.json"), filepath.Join(dir, "data", "pgpass")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	data := filepath.Join(dir, "data")
	ents, _ := os.ReadDir(data)
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(data, e.Name(), "PG_VERSION")); err == nil && e.IsDir() {
			errs = append(errs, os.RemoveAll(filepath.Join(data, e.Name())))
		}
	}
	if len(ents) > 0 {
		_ = os.Remove(data) // only when empty now
	}
	return errors.Join(errs...)
}

// register picks the subnet and an id, and records the cluster in the
// registry (holding its owner lock) before anything is created.
func (c *Cluster) register() error {
	return withRegistryLock(func() error {
		es, _ := entries()
		taken := map[string]bool{}
		for _, e := range es {
			taken[e.Subnet] = true
		}
		var subnet *net.IPNet
		if c.opts.Subnet == AutoSubnet {
			for x := 0; x < 256 && subnet == nil; x++ {
				cand, _ := ParseSubnet(fmt.Sprintf("10.213.%d.0/24", x))
				if _, used := subnetInUse(cand); !used && !taken[cand.String()] {
					subnet = cand
				}
			}
			if subnet == nil {
				return fmt.Errorf("%w: no free 10.213.X.0/24 left", ErrSubnetInUse)
			}
		} else {
			s, err := ParseSubnet(c.opts.Subnet)
			if err != nil {
				return fmt.Errorf("%w: %w", cluster.ErrSpec, err)
			}
			if what, used := subnetInUse(s); used {
				return fmt.Errorf("%w: %s (%s); choose another with --subnet", ErrSubnetInUse, s, what)
			}
			if taken[s.String()] {
				return fmt.Errorf("%w: %s is used by another strongcheck cluster; choose another with --subnet", ErrSubnetInUse, s)
			}
			subnet = s
		}
		var id string
		for {
			id = randomHex(3)
			if _, err := os.Stat(entryPath(id)); errors.Is(err, os.ErrNotExist) {
				break
			}
		}
		c.net = newNetwork(id, subnet, append(append([]string(nil), c.nodes...), c.extra...))
		if len(c.net.bridge) > 15 {
			return fmt.Errorf("interface name %q too long", c.net.bridge)
		}
		l, ok, err := lockEntry(id)
		if err != nil || !ok {
			return fmt.Errorf("registry: lock %s: %v", id, err)
		}
		c.lock = l
		c.entry = &entry{ID: id, Dir: c.opts.Dir, Subnet: subnet.String(), Bridge: c.net.bridge,
			Namespaces: c.net.namespaces(), Veths: c.net.veths(), PIDs: map[string]int{},
			DataDirs: map[string]string{}, Owner: os.Getpid()}
		for _, n := range c.nodes {
			c.entry.DataDirs[n] = c.dataDir(n)
			c.servers[n] = &server{node: n, dataDir: c.dataDir(n), logPath: c.logPath(n)}
		}
		return c.entry.save()
	})
}

func (c *Cluster) dataDir(node string) string { return filepath.Join(dataRoot(c.net.id), node) }
func (c *Cluster) logPath(node string) string { return filepath.Join(c.opts.Dir, "logs", node+".log") }
func (c *Cluster) passfile() string           { return passfilePath(c.net.id) }

// configure writes a node's postgresql.conf (the cluster-wide settings),
// pg_hba.conf, and for a standby standby.signal and primary_conninfo. The
// settings that belong to one node go on its command line (startArgs).
func (c *Cluster) configure(node string, primary bool) error {
	dd := c.dataDir(node)
	var conf strings.Builder
	conf.WriteString("# written by strongcheck: the cluster-wide settings\n")
	eff := c.spec.Effective()
	for _, k := range sortedKeys(eff) {
		fmt.Fprintf(&conf, "%s = %s\n", k, confValue(eff[k]))
	}
	if err := c.writeOwned(filepath.Join(dd, "postgresql.conf"), conf.String()); err != nil {
		return err
	}
	hba := fmt.Sprintf("# written by strongcheck: only this cluster's subnet, scram-sha-256\n"+
		"host all         all  %[1]s scram-sha-256\n"+
		"host replication repl %[1]s scram-sha-256\n", c.net.subnet.String())
	if err := c.writeOwned(filepath.Join(dd, "pg_hba.conf"), hba); err != nil {
		return err
	}
	if primary {
		return c.writeOwned(filepath.Join(dd, "postgresql.auto.conf"), autoConfHeader)
	}
	if err := c.writeOwned(filepath.Join(dd, "standby.signal"), ""); err != nil {
		return err
	}
	return c.writeOwned(filepath.Join(dd, "postgresql.auto.conf"),
		autoConfHeader+fmt.Sprintf("primary_conninfo = %s\n", confValue(c.conninfo(node, c.nodes[0]))))
}

const autoConfHeader = "# Do not edit this file manually!\n# It will be overwritten by the ALTER SYSTEM command.\n"

// conninfo is the primary_conninfo by which standby streams from primary.
func (c *Cluster) conninfo(standby, primary string) string {
	return fmt.Sprintf("host=%s port=%d user=repl passfile=%s application_name=%s connect_timeout=2 keepalives_idle=5 keepalives_interval=2 keepalives_count=2",
		c.net.ipOf[primary], Port, c.passfile(), standby)
}

func confValue(v string) string {
	if strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") && len(v) >= 2 {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}

func sortedKeys(m cluster.Settings) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

func (c *Cluster) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Chown(path, int(c.user.uid), int(c.user.gid))
}

// startArgs are the settings that belong to one node.
func (c *Cluster) startArgs(node string) []string {
	return []string{
		"-c", "listen_addresses=" + c.net.ipOf[node],
		"-c", fmt.Sprintf("port=%d", Port),
		"-c", "cluster_name=" + node,
		"-c", "unix_socket_directories=",
	}
}

func (c *Cluster) startNode(ctx context.Context, node string) error {
	s := c.servers[node]
	if err := s.start(c.net.nsOf[node], c.user, c.bin.Path("postgres"), c.startArgs(node)); err != nil {
		return err
	}
	c.entryMu.Lock()
	c.entry.PIDs[node] = s.pid()
	err := c.entry.save()
	c.entryMu.Unlock()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return s.waitReady(rctx)
}

// bootstrap sets the cluster's own passwords (as SCRAM verifiers) and
// creates the replication and workload roles, on the primary only; the
// standbys receive them by replication. It commits locally: the standbys are
// not streaming yet.
func (c *Cluster) bootstrap(ctx context.Context, primary, templatePW string) error {
	dsn := fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=5",
		c.net.ipOf[primary], Port, templatePW)
	stmts := []string{
		"SET synchronous_commit = local",
		fmt.Sprintf("CREATE ROLE repl WITH REPLICATION LOGIN PASSWORD '%s'", scramVerifier(c.sec.Repl)),
		fmt.Sprintf("CREATE ROLE %s WITH LOGIN PASSWORD '%s'", UserName, scramVerifier(c.sec.User)),
		fmt.Sprintf("GRANT CREATE ON SCHEMA public TO %s", UserName),
		fmt.Sprintf("ALTER ROLE postgres PASSWORD '%s'", scramVerifier(c.sec.Superuser)),
	}
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(bctx, dsn)
	if err != nil {
		return fmt.Errorf("bootstrap %s: connect: %w", primary, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(bctx, s); err != nil {
			return fmt.Errorf("bootstrap %s: %w", primary, err)
		}
	}
	return nil
}

func (c *Cluster) writeState() error {
	st := state{ID: c.entry.ID, Subnet: c.net.subnet.String(), Nodes: c.nodes, Addrs: c.net.ipOf,
		Settings: c.spec.Effective(), Version: c.bin.Version, Detached: c.opts.Detached, DataDir: dataRoot(c.net.id)}
	b, _ := json.MarshalIndent(st, "", "  ")
	return os.WriteFile(filepath.Join(c.opts.Dir, "cluster.json"), b, 0o644)
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cluster.json"))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "cluster.json"), err)
	}
	return &st, nil
}

// Backend implements cluster.Cluster.
func (c *Cluster) Backend() string { return "local" }

// Spec implements cluster.Cluster.
func (c *Cluster) Spec() cluster.Spec { return c.spec }

// Nodes implements cluster.Cluster.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.nodes...) }

// Addr is node's address inside the cluster's subnet.
func (c *Cluster) Addr(node string) string { return c.net.ipOf[node] }

// Dir is the cluster folder.
func (c *Cluster) Dir() string { return c.opts.Dir }

// SecretsFile is the root-only file that holds the cluster's passwords,
// outside the cluster folder.
func (c *Cluster) SecretsFile() string { return secretsPath(c.net.id) }

// DataDir is the folder of the nodes' data folders, outside the cluster
// folder.
func (c *Cluster) DataDir() string { return dataRoot(c.net.id) }

// PostgresVersion is the server version, e.g. "15.18".
func (c *Cluster) PostgresVersion() string { return c.bin.Version }

// Subnet is the cluster's network.
func (c *Cluster) Subnet() string { return c.net.subnet.String() }

// ConnString implements cluster.Cluster.
func (c *Cluster) ConnString(node string, admin bool) string {
	user, pw := UserName, c.sec.User
	if admin {
		user, pw = "postgres", c.sec.Superuser
	}
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=2",
		c.net.ipOf[node], Port, user, pw, DBName)
}

// ErrAttached is returned by process-level methods of an attached cluster.
var ErrAttached = errors.New("cluster attached read-only: only the process that started it controls its servers")

func (c *Cluster) server(node string) (*server, error) {
	if c.attached {
		return nil, ErrAttached
	}
	s, ok := c.servers[node]
	if !ok {
		return nil, fmt.Errorf("%w: no node %q (nodes: %s)", cluster.ErrSpec, node, strings.Join(c.nodes, ", "))
	}
	return s, nil
}

// Kill implements cluster.Cluster.
func (c *Cluster) Kill(ctx context.Context, node string) error {
	s, err := c.server(node)
	if err != nil {
		return err
	}
	return s.kill()
}

// Start implements cluster.Cluster.
func (c *Cluster) Start(ctx context.Context, node string) error {
	if _, err := c.server(node); err != nil {
		return err
	}
	return c.startNode(ctx, node)
}

// Stop implements cluster.Cluster.
func (c *Cluster) Stop(ctx context.Context, node string) error {
	s, err := c.server(node)
	if err != nil {
		return err
	}
	return s.stop(false, 30*time.Second)
}

// Pause implements cluster.Cluster.
func (c *Cluster) Pause(ctx context.Context, node string) error {
	s, err := c.server(node)
	if err != nil {
		return err
	}
	return s.pause()
}

// Resume implements cluster.Cluster.
func (c *Cluster) Resume(ctx context.Context, node string) error {
	s, err := c.server(node)
	if err != nil {
		return err
	}
	s.resume()
	return nil
}

var _ cluster.BackendPauser = (*Cluster)(nil)

// PauseBackends implements cluster.BackendPauser.
func (c *Cluster) PauseBackends(ctx context.Context, node string, pids []int) ([]int, error) {
	s, err := c.server(node)
	if err != nil {
		return nil, err
	}
	return s.signalBackends(pids, syscall.SIGSTOP)
}

// ResumeBackends implements cluster.BackendPauser. A stop or kill of the
// node continues every process anyway (see server.stop).
func (c *Cluster) ResumeBackends(ctx context.Context, node string, pids []int) error {
	s, err := c.server(node)
	if err != nil {
		return err
	}
	_, err = s.signalBackends(pids, syscall.SIGCONT)
	return err
}

// Status implements cluster.Cluster.
func (c *Cluster) Status(node string) cluster.Role {
	if c.attached {
		c.entryMu.Lock()
		defer c.entryMu.Unlock()
		if c.entry != nil && isOurPostmaster(c.entry.PIDs[node], c.entry.DataDirs[node]) {
			return cluster.Unknown
		}
		return cluster.Down
	}
	s, ok := c.servers[node]
	switch {
	case !ok || !s.running():
		return cluster.Down
	case s.isPaused():
		return cluster.Paused
	}
	return cluster.Unknown
}

// Partition implements cluster.Cluster.
func (c *Cluster) Partition(ctx context.Context, g cluster.Grudge) error {
	if c.attached {
		return ErrAttached
	}
	cut := map[string][]string{}
	for _, p := range g.Pairs() {
		for _, n := range p {
			if _, ok := c.net.ipOf[n]; !ok {
				return fmt.Errorf("%w: partition: no node %q", cluster.ErrSpec, n)
			}
		}
		cut[p[0]] = append(cut[p[0]], p[1])
		cut[p[1]] = append(cut[p[1]], p[0])
	}
	return c.net.partition(ctx, cut)
}

// Heal implements cluster.Cluster.
func (c *Cluster) Heal(ctx context.Context) error {
	if c.attached {
		return ErrAttached
	}
	return c.net.heal(ctx)
}

// ShapeLinks implements cluster.LinkShaper.
func (c *Cluster) ShapeLinks(ctx context.Context, rate string) error {
	if c.attached {
		return ErrAttached
	}
	if err := (cluster.Spec{LinkRate: rate}).Validate(); err != nil {
		return err
	}
	return c.net.shape(ctx, rate, 0)
}

// Follow implements cluster.Cluster.
func (c *Cluster) Follow(ctx context.Context, standby, primary string) error {
	return cluster.AlterSystem(ctx, c.ConnString(standby, true), "primary_conninfo", c.conninfo(standby, primary))
}

// Rejoin implements cluster.Cluster: crash node if it runs, pg_rewind it
// from primary (which first finishes crash recovery of the node's WAL),
// make it a standby of primary with only primary_conninfo in its
// postgresql.auto.conf (pg_rewind copied the primary's, sync list included),
// and start it.
func (c *Cluster) Rejoin(ctx context.Context, node, primary string) error {
	s, err := c.server(node)
	if err != nil {
		return err
	}
	if s.running() {
		// Crash it rather than stop it: pg_rewind then first runs crash
		// recovery of the node's own WAL to its end (single-user mode)
		// and compares from there, rather than from what the control
		// file of a node stopped in recovery says. The node's data is
		// being rewound anyway.
		if err := s.kill(); err != nil {
			return fmt.Errorf("rejoin %s: kill: %w", node, err)
		}
	}
	// pg_rewind finishes crash recovery of a target that was not shut down
	// cleanly in single-user mode, which refuses to run in standby mode.
	for _, sig := range []string{"standby.signal", "recovery.signal"} {
		if err := os.Remove(filepath.Join(c.dataDir(node), sig)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rejoin %s: %w", node, err)
		}
	}
	src := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres passfile=%s connect_timeout=5", c.net.ipOf[primary], Port, c.passfile())
	out, err := c.runAsPostgres(ctx, c.bin.Path("pg_rewind"), "-D", c.dataDir(node), "--source-server="+src)
	c.appendLog(node, fmt.Sprintf("strongcheck: pg_rewind from %s: %v\n%s\n", primary, errOrOK(err), out))
	if err != nil {
		return fmt.Errorf("rejoin %s: pg_rewind from %s: %w: %s", node, primary, err, out)
	}
	dd := c.dataDir(node)
	if err := c.writeOwned(filepath.Join(dd, "postgresql.auto.conf"),
		autoConfHeader+fmt.Sprintf("primary_conninfo = %s\n", confValue(c.conninfo(node, primary)))); err != nil {
		return err
	}
	if err := c.writeOwned(filepath.Join(dd, "standby.signal"), ""); err != nil {
		return err
	}
	if err := c.startNode(ctx, node); err != nil {
		return fmt.Errorf("rejoin %s: %w", node, err)
	}
	return nil
}

// appendLog adds a line of the harness's own to node's server log, so the
// log shows what was done to the node (e.g. pg_rewind's output).
func (c *Cluster) appendLog(node, text string) {
	f, err := os.OpenFile(c.logPath(node), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(text)
}

func errOrOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "ok"
}

func (c *Cluster) runAsPostgres(ctx context.Context, prog string, args ...string) (string, error) {
	cmd := execCommand(ctx, prog, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.user.uid, Gid: c.user.gid}}
	cmd.Env = []string{"LANG=C", "LC_ALL=C", "PATH=" + c.bin.Dir + ":/usr/bin:/bin"}
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// CollectLogs implements cluster.Cluster.
func (c *Cluster) CollectLogs(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	for _, n := range c.nodes {
		b, err := os.ReadFile(c.logPath(n))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, n+".log"), b, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Detach leaves the cluster running after this process exits (`cluster
// up`, `test --leave-db-running`): the registry marks it detached, so
// sweeps leave it alone until Down of its folder. Its data and runtime
// folders stay with it.
func (c *Cluster) Detach() error {
	c.entryMu.Lock()
	c.entry.Detached = true
	err := c.entry.save()
	c.entryMu.Unlock()
	if err != nil {
		return err
	}
	c.opts.Detached = true
	if err := c.writeState(); err != nil {
		return err
	}
	c.lock.release()
	c.closeMu.Lock()
	c.closed = true
	c.closeMu.Unlock()
	return nil
}

// Close implements cluster.Cluster: immediate shutdown of every server
// (it returns once every process the servers ran has left the process
// table), removal of namespaces, veths and bridge, of the data and runtime
// folders and of the registry entry. Logs stay in the folder.
func (c *Cluster) Close(ctx context.Context) error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed || c.attached {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		s := c.servers[n]
		if s == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.teardown(5*time.Second, defaultGoneTimeout)
		}()
	}
	wg.Wait()
	err := errors.Join(errs...)
	if c.net != nil {
		err = errors.Join(err, deleteNetwork(c.net.namespaces(), c.net.veths(), c.net.bridge))
	}
	if c.net != nil {
		err = errors.Join(err, removePrivateDirs(c.net.id))
	}
	if err != nil {
		return fmt.Errorf("tear down: %w", err)
	}
	os.Remove(filepath.Join(c.opts.Dir, "cluster.json"))
	if c.entry != nil {
		os.Remove(entryPath(c.entry.ID))
		os.Remove(lockPath(c.entry.ID))
	}
	c.lock.release()
	c.closed = true
	return nil
}

// Attach opens the cluster recorded in dir (e.g. one left up by `cluster
// up`) for reading: connection strings and SQL state work, process control
// does not.
func Attach(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, fmt.Errorf("%w in %s: %w", ErrNoCluster, dir, err)
	}
	sec, err := readSecrets(st.ID)
	if err != nil {
		return nil, fmt.Errorf("%w in %s (is it down?): %w", ErrNoCluster, dir, err)
	}
	sub, err := ParseSubnet(st.Subnet)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: Options{Dir: dir}, spec: cluster.Spec{Nodes: st.Nodes}, nodes: st.Nodes, sec: sec,
		net: newNetwork(st.ID, sub, st.Nodes), attached: true}
	c.bin.Version = st.Version
	c.entry, _ = loadEntry(entryPath(st.ID))
	return c, nil
}

// Down tears down the cluster recorded in dir, whether detached or left by
// a dead process, and sweeps other dead clusters. It returns once every
// server process has left the process table, and the data and runtime
// folders are removed. It refuses a cluster whose owner is still running.
// No cluster in dir is not an error.
func Down(ctx context.Context, dir string) error {
	if _, err := Sweep(); err != nil {
		return err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	st, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !validID(st.ID) {
		return fmt.Errorf("%s: cluster id %q is not one strongcheck makes", filepath.Join(dir, "cluster.json"), st.ID)
	}
	if e, err := loadEntry(entryPath(st.ID)); err == nil {
		l, ok, err := lockEntry(e.ID)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %s is owned by running process %d", ErrAlreadyUp, dir, e.Owner)
		}
		defer l.release()
		if err := teardownEntry(e); err != nil {
			return err
		}
	}
	// No entry (e.g. /run emptied by a reboot): the folders may remain.
	if err := removePrivateDirs(st.ID); err != nil {
		return err
	}
	if err := removeOldLayout(dir); err != nil {
		return err
	}
	return os.Remove(filepath.Join(dir, "cluster.json"))
}
