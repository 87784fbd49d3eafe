// Package cluster defines the one interface the harness sees of a PostgreSQL
// cluster under test, the cluster's specification (the seed guide's
// settings, overridable), the SQL that reads and changes replication state on
// any backend, and Failover: promote the most advanced standby, keep RPO = 0
// with the nodes that remain, re-point the other standby, and later rejoin
// the old primary with pg_rewind.
//
// Backends (cluster/local, cluster/k8s) implement Cluster; this package
// imports none of them.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/strongcheck/strongcheck/internal/usererr"
	"github.com/strongcheck/strongcheck/results"
)

// Role is what a node is right now.
type Role string

// Roles as Cluster.State and the nemesis report them.
const (
	Primary Role = "primary"
	Standby Role = "standby"
	Down    Role = "down"
	Paused  Role = "paused"
	Unknown Role = "unknown"
)

// Grudge says who cannot reach whom: Grudge["n1"] = ["n2"] cuts traffic from
// n1 to n2. Partition applies it in both directions for each pair named, so a
// one-sided entry is enough. The harness itself (clients, admin connections)
// always reaches every node.
type Grudge map[string][]string

// Pairs returns the unordered node pairs the grudge cuts, sorted.
func (g Grudge) Pairs() [][2]string {
	seen := map[[2]string]bool{}
	for a, bs := range g {
		for _, b := range bs {
			if a == b {
				continue
			}
			p := [2]string{a, b}
			if b < a {
				p = [2]string{b, a}
			}
			seen[p] = true
		}
	}
	out := make([][2]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

// Cluster is a running three-node (or larger) PostgreSQL cluster with one
// primary and streaming standbys. Methods take node names from Nodes. All
// methods are safe for concurrent use unless they say otherwise; a method
// that changes a node (Kill, Start, Stop, Pause, Resume, Rejoin) must not run
// concurrently with another such method on the same node.
type Cluster interface {
	// Backend is the backend's name ("local", "k8s").
	Backend() string
	// Spec is the specification the cluster was built from.
	Spec() Spec
	// Nodes lists the node names in spec order.
	Nodes() []string
	// ConnString is a DSN for node as the harness reaches it: the workload
	// user's, or the superuser's when admin is true. It holds a password:
	// never log or store it; use Redact for display.
	ConnString(node string, admin bool) string
	// Kill crashes node: SIGKILL of the postmaster and its children, and
	// waits until they are gone.
	Kill(ctx context.Context, node string) error
	// Start starts a stopped or crashed node in the role its data directory
	// says and waits until it accepts connections.
	Start(ctx context.Context, node string) error
	// Stop shuts node down cleanly (fast mode) and waits.
	Stop(ctx context.Context, node string) error
	// Pause freezes every process of node (SIGSTOP); Resume thaws them.
	Pause(ctx context.Context, node string) error
	Resume(ctx context.Context, node string) error
	// Partition cuts the traffic the grudge names, established streams
	// included, replacing any earlier partition. Heal removes every cut.
	Partition(ctx context.Context, g Grudge) error
	Heal(ctx context.Context) error
	// Follow points standby at primary (primary_conninfo) without a restart.
	Follow(ctx context.Context, standby, primary string) error
	// Rejoin turns a former primary into a standby of primary: stop it
	// cleanly if it runs, pg_rewind it from primary, point it at primary and
	// start it.
	Rejoin(ctx context.Context, node, primary string) error
	// CollectLogs copies every node's server log into dir.
	CollectLogs(ctx context.Context, dir string) error
	// Status is what the backend knows of node's processes without asking
	// the server: Down, Paused, or Unknown (running; ask the server).
	Status(node string) Role
	// Close tears the cluster down: every process, namespace, rule and file
	// the backend created outside the run's folder. It is idempotent.
	Close(ctx context.Context) error
}

// LinkShaper is implemented by backends that can limit the bandwidth of
// the links between nodes while a test runs (a WAN's congestion).
type LinkShaper interface {
	// ShapeLinks limits traffic between nodes to rate (e.g. "1mbit");
	// "" removes the limit.
	ShapeLinks(ctx context.Context, rate string) error
}

// BackendPauser is implemented by backends that can stop and continue
// single server processes of a node (the backends serving clients), as a
// scheduler that starves a process does. The nemesis's stall-commit uses
// it to hold commits that have reached the standbys out of the primary's
// view.
type BackendPauser interface {
	// PauseBackends SIGSTOPs those of pids that are server processes of
	// node's postmaster (others are left alone) and returns the ones it
	// stopped. A caller must ResumeBackends them: a stopped backend holds
	// its locks, and its client waits.
	PauseBackends(ctx context.Context, node string, pids []int) ([]int, error)
	// ResumeBackends SIGCONTs those of pids that are still server
	// processes of node's postmaster.
	ResumeBackends(ctx context.Context, node string, pids []int) error
}

// Settings are postgresql.conf parameters.
type Settings map[string]string

// Spec describes the cluster to build.
type Spec struct {
	// Nodes are the node names; the first is the initial primary. Names are
	// also the standbys' application_name, so they must be unique.
	Nodes []string
	// Settings override DefaultSettings (and synchronous_standby_names,
	// which defaults to ANY n-1 of the standbys) for every node.
	Settings Settings
	// LinkRate limits the bandwidth of the links between nodes (the
	// replication streams), e.g. "1mbit", as a WAN between regions would;
	// traffic between the harness and the nodes is not limited. Empty:
	// unlimited. A backend that cannot shape traffic rejects it.
	LinkRate string
	// Manager puts the cluster in the charge of an HA manager (see
	// manager.go); the zero value is the harness's own failover.
	Manager ManagerSpec
}

// DefaultNodes are the node names when none are given.
var DefaultNodes = []string{"n1", "n2", "n3"}

// SyncAll is the sync list that makes every standby of primary synchronous:
// 'ANY k (others...)' with k the number of others. With no other node it is ”.
func SyncAll(primary string, nodes []string) string {
	var others []string
	for _, n := range nodes {
		if n != primary {
			others = append(others, n)
		}
	}
	return syncList(others)
}

func syncList(standbys []string) string {
	if len(standbys) == 0 {
		return ""
	}
	return fmt.Sprintf("ANY %d (%s)", len(standbys), strings.Join(standbys, ", "))
}

// DefaultSettings are the seed guide's settings done right (see GUIDE.md and
// FIELD-NOTES.md): synchronous_commit=on, wal_log_hints for pg_rewind, equal
// max_connections, and short replication timeouts so that partitions heal
// within seconds rather than minutes. wal_retrieve_retry_interval is 50 ms
// (PostgreSQL's default is 5 s; strongcheck used 500 ms before it traced a
// failover): a standby whose WAL source went away (a dead primary, the end
// of the timeline it streamed from a node just promoted) asks again that
// soon, and the first commit after a failover waits for it.
func DefaultSettings() Settings {
	return Settings{
		"wal_level":                    "replica",
		"max_wal_senders":              "10",
		"max_replication_slots":        "10",
		"wal_keep_size":                "512MB",
		"wal_log_hints":                "on",
		"hot_standby":                  "on",
		"synchronous_commit":           "on",
		"max_connections":              "200",
		"shared_buffers":               "128MB",
		"password_encryption":          "scram-sha-256",
		"wal_sender_timeout":           "10s",
		"wal_receiver_timeout":         "10s",
		"wal_retrieve_retry_interval":  "50ms",
		"wal_receiver_status_interval": "1s",
		"log_line_prefix":              "%m [%p] %a ",
		"log_min_messages":             "warning",
		"logging_collector":            "off",
	}
}

// Effective returns the settings every node runs with: DefaultSettings, the
// default sync list, then the spec's overrides.
func (s Spec) Effective() Settings {
	out := DefaultSettings()
	nodes := s.NodeNames()
	out["synchronous_standby_names"] = quote(SyncAll(nodes[0], nodes))
	if s.Manager.Managed() {
		// The manager sets it, and changes it as nodes come and go.
		delete(out, "synchronous_standby_names")
	}
	for k, v := range s.Settings {
		if k == "synchronous_standby_names" {
			v = quote(strings.Trim(v, "'"))
		}
		out[k] = v
	}
	return out
}

// SyncStandbyNames is the effective initial synchronous_standby_names,
// unquoted.
func (s Spec) SyncStandbyNames() string {
	return strings.Trim(s.Effective()["synchronous_standby_names"], "'")
}

func quote(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// NodeNames returns the node names, DefaultNodes when none are set.
func (s Spec) NodeNames() []string {
	if len(s.Nodes) == 0 {
		return append([]string(nil), DefaultNodes...)
	}
	return append([]string(nil), s.Nodes...)
}

// Validate checks the node names: at least two, unique, and usable as
// application_name and in interface names (letters, digits, '_', at most 8).
func (s Spec) Validate() error {
	nodes := s.NodeNames()
	if len(nodes) < 2 {
		return fmt.Errorf("%w: need at least 2 nodes, got %d", ErrSpec, len(nodes))
	}
	seen := map[string]bool{}
	for _, n := range nodes {
		if n == "" || len(n) > 8 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" || n[0] < 'a' || n[0] > 'z' {
			return fmt.Errorf("%w: node name %q: use 1-8 lower-case letters, digits or _, starting with a letter", ErrSpec, n)
		}
		if seen[n] {
			return fmt.Errorf("%w: node name %q given twice (standbys must have unique application_name)", ErrSpec, n)
		}
		seen[n] = true
	}
	for k := range s.Settings {
		if k == "" || strings.ContainsAny(k, " =\n'\"") {
			return fmt.Errorf("%w: setting name %q", ErrSpec, k)
		}
	}
	if _, ok := s.Settings["synchronous_standby_names"]; ok && s.Manager.Managed() {
		return fmt.Errorf("%w: synchronous_standby_names is set by %s: use its --manager-conf settings instead", ErrSpec, s.Manager.Name)
	}
	if err := s.Manager.Validate(nodes); err != nil {
		return err
	}
	if s.LinkRate != "" && !linkRateRe.MatchString(s.LinkRate) {
		return fmt.Errorf("%w: link rate %q: want a number and kbit, mbit or gbit, e.g. 1mbit", ErrSpec, s.LinkRate)
	}
	return nil
}

var linkRateRe = regexp.MustCompile(`^[1-9][0-9]*(kbit|mbit|gbit)$`)

// ErrSpec is wrapped by errors in a cluster specification (the user's
// input, usererr).
var ErrSpec = usererr.Sentinel("invalid cluster spec")

// Redact replaces the password in a DSN with ****.
func Redact(dsn string) string {
	var out []string
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "password=") {
			f = "password=****"
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

// NodeStates reads every node's state (role, timeline, LSNs) concurrently;
// a node that cannot be reached is reported with its error, not dropped.
func NodeStates(ctx context.Context, c Cluster) []results.NodeState {
	nodes := c.Nodes()
	out := make([]results.NodeState, len(nodes))
	done := make(chan struct{}, len(nodes))
	for i, n := range nodes {
		go func() {
			defer func() { done <- struct{}{} }()
			if st := c.Status(n); st != Unknown {
				out[i] = results.NodeState{Node: n, Role: string(st)}
				return
			}
			s, err := QueryState(ctx, c.ConnString(n, true))
			s.Node = n
			if err != nil {
				s.Role = string(Unknown)
				s.Error = err.Error()
			}
			out[i] = s
		}()
	}
	for range nodes {
		<-done
	}
	return out
}

// FindPrimary asks every node and returns the one that is not in recovery.
// It fails when there is none, or more than one (split brain).
func FindPrimary(ctx context.Context, c Cluster) (string, error) {
	var prim []string
	for _, s := range NodeStates(ctx, c) {
		if s.Role == string(Primary) {
			prim = append(prim, s.Node)
		}
	}
	switch len(prim) {
	case 1:
		return prim[0], nil
	case 0:
		return "", ErrNoPrimary
	}
	return "", fmt.Errorf("%w: %s", ErrSplitBrain, strings.Join(prim, ", "))
}

// Errors about the cluster's roles.
var (
	ErrNoPrimary  = errors.New("no primary")
	ErrSplitBrain = errors.New("more than one primary")
)
