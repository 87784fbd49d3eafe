package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
)

// autoFailover runs pg_auto_failover: a monitor (a PostgreSQL with the
// pgautofailover extension and its own pg_autoctl) in a namespace of its
// own, and a keeper (pg_autoctl) per node that starts, promotes, demotes
// and rewinds the node's PostgreSQL as the monitor assigns states. The
// primary and the monitor start from copies of the cached initdb template;
// pg_autoctl clones the standbys with pg_basebackup.
//
// pg_autoctl's own users connect with trust from the cluster's subnet
// only (pgautofailover_replicator, pgautofailover_monitor, autoctl_node),
// and pg_autoctl's local connections with trust over the node's abstract
// unix socket;
// every other connection, the harness's included, uses SCRAM passwords.
type autoFailover struct {
	m       *ManagedCluster
	tmpl    template
	version string
}

// autoFailoverStates where a node takes writes, as the monitor records
// them.
var autoFailoverWritable = []string{"single", "primary", "wait_primary", "join_primary", "apply_settings"}

func (a *autoFailover) describe() string {
	if a.version == "" {
		a.version = "pg_auto_failover " + toolVersion("pg_autoctl", "--version")
	}
	return a.version
}

func (a *autoFailover) extra() []string { return []string{cluster.AutoFailoverMonitor} }

const autoFailoverDB = "pg_auto_failover"

// afSocket is every node's unix socket directory: abstract, so in the
// node's own network namespace.
const afSocket = "@strongcheck"

func (a *autoFailover) monitorIP() string { return a.m.net.ipOf[cluster.AutoFailoverMonitor] }

func (a *autoFailover) monitorURI() string {
	return fmt.Sprintf("postgres://autoctl_node@%s:%d/%s?sslmode=disable", a.monitorIP(), Port, autoFailoverDB)
}

// monitorDSN is the harness's own connection to the monitor.
func (a *autoFailover) monitorDSN(password string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=%s sslmode=disable connect_timeout=2", a.monitorIP(), Port, password, autoFailoverDB)
}

func (a *autoFailover) provision(ctx context.Context) error {
	m := a.m
	mon := cluster.AutoFailoverMonitor
	for _, n := range append([]string{mon}, m.nodes...) {
		if err := m.ownedDir(m.mgrDir(n)); err != nil {
			return err
		}
		m.newAgent(n, "pg_autoctl", "", m.dataDir(n))
	}
	// The monitor and the first node start from the template; the
	// standbys' folders start empty, for pg_basebackup.
	for _, n := range []string{mon, m.nodes[0]} {
		if err := copyDir(ctx, a.tmpl.dir, m.dataDir(n)); err != nil {
			return err
		}
		if err := a.configure(n); err != nil {
			return err
		}
	}
	for _, n := range m.nodes[1:] {
		if err := m.ownedDir(m.dataDir(n)); err != nil {
			return err
		}
	}
	// pg_autoctl's pg_basebackup lands in <data>/backup/node_<id> first.
	if err := m.ownedDir(filepath.Join(dataRoot(m.net.id), "backup")); err != nil {
		return err
	}
	if err := a.create(ctx, mon); err != nil {
		return err
	}
	if err := a.setPassword(ctx, a.monitorDSN(a.tmpl.password)); err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	if err := a.create(ctx, m.nodes[0]); err != nil {
		return err
	}
	if err := a.awaitState(ctx, m.nodes[0], "single"); err != nil {
		return err
	}
	dsn := fmt.Sprintf("host=%s port=%d user=postgres password=%s dbname=postgres sslmode=disable connect_timeout=2", m.net.ipOf[m.nodes[0]], Port, a.tmpl.password)
	if err := a.setPassword(ctx, dsn); err != nil {
		return fmt.Errorf("%s: %w", m.nodes[0], err)
	}
	for _, n := range m.nodes[1:] {
		if err := a.create(ctx, n); err != nil {
			return err
		}
	}
	return a.setFormation(ctx)
}

// configure writes the settings and pg_hba.conf of a template copy. The
// settings go in postgresql.auto.conf, which PostgreSQL reads last: they
// override the tuning pg_autoctl writes into its own include file (which
// sizes shared_buffers after the machine's memory, for every instance).
func (a *autoFailover) configure(node string) error {
	m := a.m
	var conf strings.Builder
	conf.WriteString(autoConfHeader)
	eff := m.spec.Effective()
	// pg_autoctl starts PostgreSQL with no TCP listener for crash
	// recovery before pg_rewind, so it needs a socket: an abstract one
	// (Linux, PostgreSQL 14+), which lives in the node's own network
	// namespace, where a path would be shared by every node on port 5432.
	eff["unix_socket_directories"] = afSocket
	// pg_autoctl keeps PostgreSQL's output to itself: the server logs to
	// <data>/log/postgresql.log, which CollectLogs copies.
	eff["logging_collector"], eff["log_directory"], eff["log_filename"] = "on", "log", "postgresql.log"
	if node == cluster.AutoFailoverMonitor {
		ms := m.spec.Manager
		for _, k := range []string{"health_check_period", "health_check_timeout", "health_check_max_retries",
			"health_check_retry_delay", "node_considered_unhealthy_timeout", "primary_demote_timeout"} {
			eff["pgautofailover."+k] = ms.Effective()[k]
		}
	}
	for _, k := range sortedKeys(eff) {
		fmt.Fprintf(&conf, "%s = %s\n", k, confValue(eff[k]))
	}
	dd := m.dataDir(node)
	if err := m.writeOwned(filepath.Join(dd, "postgresql.auto.conf"), conf.String()); err != nil {
		return err
	}
	sub := m.net.subnet.String()
	var hba strings.Builder
	hba.WriteString("# written by strongcheck: pg_autoctl's users by trust from the cluster's subnet, everyone else scram-sha-256\n")
	// The socket is abstract, in the node's own network namespace: only
	// the node's processes (and root) reach it.
	hba.WriteString("local all all trust\nlocal replication all trust\n")
	fmt.Fprintf(&hba, "host %s autoctl_node %s trust\n", autoFailoverDB, sub)
	fmt.Fprintf(&hba, "host all pgautofailover_monitor %s trust\n", sub)
	fmt.Fprintf(&hba, "host replication pgautofailover_replicator %s trust\n", sub)
	fmt.Fprintf(&hba, "host all pgautofailover_replicator %s trust\n", sub)
	fmt.Fprintf(&hba, "host all all %s scram-sha-256\n", sub)
	fmt.Fprintf(&hba, "host replication repl %s scram-sha-256\n", sub)
	return m.writeOwned(filepath.Join(dd, "pg_hba.conf"), hba.String())
}

// env is pg_autoctl's environment for node: its configuration, state, PID
// and temporary files in the node's manager folder (by default they land
// in the postgres user's home and in /tmp), and PGHOST at the abstract
// socket.
func (a *autoFailover) env(node string) []string {
	m := a.m
	d := m.mgrDir(node)
	return append(m.agentEnv(d), "XDG_CONFIG_HOME="+filepath.Join(d, "config"), "XDG_DATA_HOME="+filepath.Join(d, "share"),
		"XDG_RUNTIME_DIR="+filepath.Join(d, "run"), "TMPDIR="+d, "PGHOST="+afSocket, fmt.Sprintf("PGPORT=%d", Port))
}

// create runs `pg_autoctl create` for node (or the monitor) to its end,
// sets the keeper's timeouts, and starts the node's agent (`pg_autoctl
// run`).
func (a *autoFailover) create(ctx context.Context, node string) error {
	m := a.m
	ms := m.spec.Manager
	dd := m.dataDir(node)
	common := []string{"--pgdata", dd, "--pgport", strconv.Itoa(Port), "--hostname", m.net.ipOf[node],
		"--no-ssl", "--skip-pg-hba", "--pgctl", m.bin.Path("pg_ctl")}
	var argv []string
	if node == cluster.AutoFailoverMonitor {
		argv = append([]string{"pg_autoctl", "create", "monitor"}, common...)
	} else {
		argv = append([]string{"pg_autoctl", "create", "postgres", "--name", node, "--monitor", a.monitorURI(),
			"--listen", m.net.ipOf[node], "--dbname", DBName,
			"--candidate-priority", ms.NodeValue("candidate-priority", node),
			"--replication-quorum", ms.NodeValue("replication-quorum", node)}, common...)
	}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := a.run(cctx, node, argv...); err != nil {
		return fmt.Errorf("%s: pg_autoctl create: %w", node, err)
	}
	if node != cluster.AutoFailoverMonitor {
		for _, kv := range [][2]string{
			{"timeout.network_partition_timeout", ms.Effective()["network_partition_timeout"]},
			{"timeout.prepare_promotion_catchup", ms.Effective()["prepare_promotion_catchup"]},
		} {
			if err := a.run(cctx, node, "pg_autoctl", "config", "set", "--pgdata", dd, kv[0], kv[1]); err != nil {
				return fmt.Errorf("%s: pg_autoctl config set %s: %w", node, kv[0], err)
			}
		}
	}
	return a.startNode(ctx, node)
}

// run runs one pg_autoctl command as postgres in node's namespace to its
// end, as an agent of its own (under tini, in the registry: pg_autoctl
// forks services that would outlive a killed command), its output
// appended to node's log. When ctx ends first, all of it is crashed.
func (a *autoFailover) run(ctx context.Context, node string, argv ...string) error {
	m := a.m
	main := m.agents[node][0]
	cmd := &agent{name: node + "/" + strings.Join(argv[:min(3, len(argv))], " "), logPath: main.logPath, marker: main.marker}
	if f, err := os.OpenFile(main.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		fmt.Fprintf(f, "strongcheck: %s\n", strings.Join(argv, " "))
		f.Close()
	}
	if err := m.launch(node, cmd, m.dataDir(node), a.env(node), argv); err != nil {
		return err
	}
	err := cmd.wait(ctx)
	m.forget(cmd)
	if err != nil {
		return fmt.Errorf("%w; log tail:\n%s", err, usefulTail(main.logPath, 12))
	}
	return nil
}

func (a *autoFailover) startNode(ctx context.Context, node string) error {
	m := a.m
	return m.launch(node, m.agents[node][0], m.dataDir(node), a.env(node), []string{"pg_autoctl", "run", "--pgdata", m.dataDir(node)})
}

// setPassword replaces the template's superuser password with the
// cluster's (a SCRAM verifier), committing locally.
func (a *autoFailover) setPassword(ctx context.Context, dsn string) error {
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(wctx, dsn)
		if err == nil {
			defer conn.Close(context.WithoutCancel(ctx))
			_, err = conn.Exec(wctx, "SET synchronous_commit = local")
			if err == nil {
				_, err = conn.Exec(wctx, fmt.Sprintf("ALTER ROLE postgres PASSWORD '%s'", scramVerifier(a.m.sec.Superuser)))
			}
			return err
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("connect: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// setFormation sets number_sync_standbys once every standby is registered
// (the monitor refuses more than the standbys minus one, and raises it to
// one by itself when the second quorum standby joins).
func (a *autoFailover) setFormation(ctx context.Context) error {
	want := a.m.spec.Manager.Int("number_sync_standbys")
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	var last error
	for {
		err := a.withMonitor(wctx, func(conn *pgx.Conn) error {
			var n int
			if err := conn.QueryRow(wctx, `SELECT count(*) FROM pgautofailover.node WHERE reportedstate = 'secondary'`).Scan(&n); err != nil {
				return err
			}
			if n < len(a.m.nodes)-1 {
				return fmt.Errorf("%d of %d standbys are secondary", n, len(a.m.nodes)-1)
			}
			var cur int
			if err := conn.QueryRow(wctx, `SELECT number_sync_standbys FROM pgautofailover.formation WHERE formationid = 'default'`).Scan(&cur); err != nil {
				return err
			}
			if cur == want {
				return nil
			}
			var ok bool
			return conn.QueryRow(wctx, `SELECT pgautofailover.set_formation_number_sync_standbys('default', $1)`, want).Scan(&ok)
		})
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-wctx.Done():
			return fmt.Errorf("set number_sync_standbys %d: %w (%v)", want, wctx.Err(), last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (a *autoFailover) withMonitor(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	cctx, cancel := context.WithTimeout(ctx, cluster.AdminTimeout)
	defer cancel()
	conn, err := pgx.Connect(cctx, a.monitorDSN(a.m.sec.Superuser))
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(conn)
}

// awaitState waits until the monitor records node in state (reported
// and assigned).
func (a *autoFailover) awaitState(ctx context.Context, node, state string) error {
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		rows, err := a.nodeRows(wctx, a.monitorDSN(a.m.sec.Superuser))
		for _, r := range rows {
			if r.name == node && r.reported == state && r.goal == state {
				return nil
			}
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("%s not %s on the monitor: %v (%v)%s", node, state, wctx.Err(), err, a.m.logTails(node))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// afNode is one row of the monitor's pgautofailover.node.
type afNode struct {
	name, reported, goal, repState string
	tli, health                    int
	pgRunning                      bool
}

func (a *autoFailover) nodeRows(ctx context.Context, dsn string) ([]afNode, error) {
	cctx, cancel := context.WithTimeout(ctx, cluster.AdminTimeout)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(cctx, `SELECT nodename, reportedstate::text, goalstate::text, coalesce(reportedrepstate, ''),
		reportedtli, health, coalesce(reportedpgisrunning, false) FROM pgautofailover.node ORDER BY nodeid`)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	defer rows.Close()
	var out []afNode
	for rows.Next() {
		var r afNode
		if err := rows.Scan(&r.name, &r.reported, &r.goal, &r.repState, &r.tli, &r.health, &r.pgRunning); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// view reads the monitor's account: the primary is the node whose
// reported and assigned states both take writes.
func (a *autoFailover) view(ctx context.Context) (cluster.ManagerView, error) {
	rows, err := a.nodeRows(ctx, a.monitorDSN(a.m.sec.Superuser))
	if err != nil {
		return cluster.ManagerView{}, err
	}
	v := cluster.ManagerView{Nodes: map[string]string{}}
	for _, r := range rows {
		s := r.reported
		if r.goal != r.reported {
			s += "→" + r.goal
		}
		s += fmt.Sprintf(" tl%d", r.tli)
		if r.health == 0 {
			s += " unhealthy"
		}
		v.Nodes[r.name] = s
		if slices.Contains(autoFailoverWritable, r.reported) && slices.Contains(autoFailoverWritable, r.goal) && r.tli >= v.Timeline {
			v.Primary, v.Timeline = r.name, r.tli
		}
		if r.reported == "secondary" && (r.repState == "sync" || r.repState == "quorum") {
			v.Sync = append(v.Sync, r.name)
		}
	}
	sort.Strings(v.Sync)
	return v, nil
}

// healthy: the primary in state primary, every other node secondary (both
// as reported and as assigned) on its timeline, and every standby
// streaming in the primary's pg_stat_replication (pg_auto_failover names
// them pgautofailover_standby_<id>, so they are counted, not named).
func (a *autoFailover) healthy(ctx context.Context, v cluster.ManagerView) error {
	if v.Primary == "" {
		return fmt.Errorf("no primary")
	}
	for _, n := range a.m.nodes {
		want := "secondary"
		if n == v.Primary {
			want = "primary"
		}
		if s := v.Nodes[n]; s != fmt.Sprintf("%s tl%d", want, v.Timeline) {
			return fmt.Errorf("%s is %q, want %s on timeline %d", n, s, want, v.Timeline)
		}
	}
	rs, err := cluster.Replication(ctx, a.m, v.Primary)
	if err != nil {
		return err
	}
	streaming := 0
	for _, r := range rs {
		if r.State == "streaming" {
			streaming++
		}
	}
	if streaming < len(a.m.nodes)-1 {
		return fmt.Errorf("%d of %d standbys streaming from %s", streaming, len(a.m.nodes)-1, v.Primary)
	}
	return nil
}

// usefulTail is the log's tail without pg_autoctl's usage text (printed
// after a bad argument, it would hide the error itself).
func usefulTail(path string, n int) string {
	var keep []string
	for _, l := range strings.Split(tail(path, 200), "\n") {
		if !strings.HasPrefix(l, "  --") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}
