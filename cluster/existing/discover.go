package existing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/results"
)

// ErrTopology is wrapped (with ErrUsage) when the cluster is not one
// primary with every other node a streaming standby of it: strongcheck
// refuses to judge a cluster it would misread.
var ErrTopology = errors.New("cluster topology")

// ErrUnreachable wraps a node that could not be reached or queried
// during discovery (a wrong DSN, a node down, a refused login).
var ErrUnreachable = errors.New("node unreachable")

// DiscoveryQueries are the statements discovery runs on every node (the
// first) and on the primary (the second); --dry-run prints them. Both only
// read.
var DiscoveryQueries = []string{
	`SELECT pg_is_in_recovery(), current_setting('server_version'), current_setting('synchronous_standby_names'),
	current_setting('synchronous_commit'), current_setting('cluster_name'),
	coalesce((SELECT status FROM pg_stat_wal_receiver), '') -- and the role, timeline and LSNs as cluster.QueryState reads them`,
	`SELECT application_name, state, sync_state, ... FROM pg_stat_replication -- on the primary`,
}

// NodeInfo is what discovery read from one node.
type NodeInfo struct {
	Node          string `json:"node"`
	InRecovery    bool   `json:"in_recovery"`
	ServerVersion string `json:"server_version"`
	SyncNames     string `json:"synchronous_standby_names"`
	SyncCommit    string `json:"synchronous_commit"`
	ClusterName   string `json:"cluster_name"`
	// Receiver is pg_stat_wal_receiver's status on a standby ("" when no
	// WAL receiver runs).
	Receiver string `json:"wal_receiver,omitempty"`
	results.NodeState
}

// Topology is the cluster as discovery found it.
type Topology struct {
	Primary string     `json:"primary"`
	Nodes   []NodeInfo `json:"nodes"`
	// Replication is the primary's pg_stat_replication.
	Replication []results.ReplicationState `json:"replication"`
}

// Summary describes the topology in one line for test.json and the
// history.
func (t Topology) Summary() string {
	var parts []string
	for _, n := range t.Nodes {
		role := "primary"
		if n.InRecovery {
			role = "standby"
		}
		parts = append(parts, fmt.Sprintf("%s %s (PostgreSQL %s, timeline %d)", n.Node, role, n.ServerVersion, n.Timeline))
	}
	var repl []string
	for _, r := range t.Replication {
		repl = append(repl, fmt.Sprintf("%s %s/%s", r.Name, r.State, r.SyncState))
	}
	p := t.primaryInfo()
	return fmt.Sprintf("%s; pg_stat_replication on %s: %s; synchronous_standby_names %q, synchronous_commit %s, cluster_name %q",
		strings.Join(parts, ", "), t.Primary, strings.Join(repl, ", "), p.SyncNames, p.SyncCommit, p.ClusterName)
}

func (t Topology) primaryInfo() NodeInfo {
	for _, n := range t.Nodes {
		if n.Node == t.Primary {
			return n
		}
	}
	return NodeInfo{}
}

// readNode reads one node's NodeInfo through dsn.
func readNode(ctx context.Context, name, dsn string) (NodeInfo, error) {
	info := NodeInfo{Node: name}
	ctx, cancel := context.WithTimeout(ctx, cluster.AdminTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return info, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('server_version'), current_setting('synchronous_standby_names'),
		current_setting('synchronous_commit'), current_setting('cluster_name'),
		coalesce((SELECT status FROM pg_stat_wal_receiver), '')`).Scan(
		&info.InRecovery, &info.ServerVersion, &info.SyncNames, &info.SyncCommit, &info.ClusterName, &info.Receiver)
	if err != nil {
		return info, err
	}
	st, err := cluster.QueryState(ctx, dsn)
	st.Node = name
	info.NodeState = st
	return info, err
}

// Discover reads every node of c concurrently and checks the topology:
// exactly one primary, every other node streaming from it under its
// application_name. Errors wrap ErrUnreachable (the nodes that could not
// be read, each with its error) or ErrTopology (what was found).
func Discover(ctx context.Context, c *Cluster) (Topology, error) {
	infos := make([]NodeInfo, len(c.nodes))
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { infos[i], errs[i] = readNode(ctx, n.Name, c.ConnString(n.Name, true)) })
	}
	wg.Wait()
	var bad []string
	for i, err := range errs {
		if err != nil {
			n := c.nodes[i]
			bad = append(bad, fmt.Sprintf("%s (%s:%d as %s): %v", n.Name, n.Host, n.Port, n.User, err))
		}
	}
	if len(bad) > 0 {
		return Topology{}, fmt.Errorf("%w: %s", ErrUnreachable, strings.Join(bad, "; "))
	}
	t := Topology{Nodes: infos}
	var prims []string
	for _, in := range infos {
		if !in.InRecovery {
			prims = append(prims, in.Node)
		}
	}
	switch len(prims) {
	case 0:
		return t, fmt.Errorf("%w: %w: every node is in recovery: no primary", ErrUsage, ErrTopology)
	case 1:
	default:
		return t, fmt.Errorf("%w: %w: %s are all out of recovery: more than one primary", ErrUsage, ErrTopology, strings.Join(prims, " and "))
	}
	t.Primary = prims[0]
	rs, err := cluster.Replication(ctx, c, t.Primary)
	if err != nil {
		return t, fmt.Errorf("%w: pg_stat_replication on %s: %w", ErrUnreachable, t.Primary, err)
	}
	t.Replication = rs
	return t, c.checkStreaming(t)
}

// checkStreaming refuses a topology in which a standby does not stream
// from the primary under its application_name.
func (c *Cluster) checkStreaming(t Topology) error {
	var listed []string
	streaming := map[string]bool{}
	for _, r := range t.Replication {
		listed = append(listed, fmt.Sprintf("%s (%s)", r.Name, r.State))
		if r.State == "streaming" {
			streaming[r.Name] = true
		}
	}
	sort.Strings(listed)
	lists := "lists no standby"
	if len(listed) > 0 {
		lists = "lists only " + strings.Join(listed, ", ")
	}
	var problems []string
	for _, n := range c.nodes {
		if n.Name == t.Primary || streaming[n.AppName()] {
			continue
		}
		hint := ""
		if n.App == "" {
			hint = fmt.Sprintf(" (if %s streams under another application_name, say so: --node %s=DSN,app=NAME)", n.Name, n.Name)
		}
		problems = append(problems, fmt.Sprintf("%s is not streaming from %s: pg_stat_replication on %s %s, no %q streaming%s",
			n.Name, t.Primary, t.Primary, lists, n.AppName(), hint))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %w: %s", ErrUsage, ErrTopology, strings.Join(problems, "; "))
	}
	if named := slices.DeleteFunc(c.Nodes(), func(n string) bool { return n == t.Primary }); len(named) < MinStandbys {
		return fmt.Errorf("%w: %w: %d standby of %s named (%s); pg_stat_replication on %s %s: strongcheck judges a primary with at least %d streaming standbys, name them all",
			ErrUsage, ErrTopology, len(named), t.Primary, strings.Join(named, ", "), t.Primary, lists, MinStandbys)
	}
	return nil
}

// MinStandbys is how many streaming standbys the primary must have: the
// promise judged is that of synchronous replication to more than one
// standby, and a failover needs a standby left to follow the new primary.
const MinStandbys = 2
