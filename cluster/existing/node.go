package existing

import (
	"bufio"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrUsage is wrapped by every error in what the user gave the backend
// (nodes, DSNs, commands, allowances): the CLI exits 254 for it.
var ErrUsage = errors.New("existing cluster")

// ErrPassword is wrapped (with ErrUsage) when a connection string holds a
// password: passwords come from the environment or a pgpass file, never the
// command line, where ps and shell histories would show them.
var ErrPassword = errors.New("a connection string must not hold a password")

// Node is one server of the user's cluster as the user named it.
type Node struct {
	// Name is the user's name for the node (1-8 lower-case letters, digits
	// or _, as cluster.Spec wants).
	Name string
	// DSN is how the workload clients reach it, without a password.
	DSN string
	// AdminDSN is how strongcheck reaches it for discovery, the schema and
	// verification; empty: DSN.
	AdminDSN string
	// App is the node's application_name in the primary's
	// pg_stat_replication when it is a standby; empty: Name.
	App string
	// Host and Port are the DSN's, for the fault commands' templates.
	Host string
	Port uint16
	// User is the DSN's role (the clients' role: the workloads grant
	// their tables to it).
	User string
}

// AppName is the application_name the node streams under.
func (n Node) AppName() string {
	if n.App != "" {
		return n.App
	}
	return n.Name
}

// Admin is the admin DSN, or DSN when none was given.
func (n Node) Admin() string {
	if n.AdminDSN != "" {
		return n.AdminDSN
	}
	return n.DSN
}

// ParseNode reads one --node value: NAME=DSN[,app=APPLICATION_NAME][,admin=DSN].
// DSN is a postgres:// URL or key=value pairs; it must not hold a password.
func ParseNode(s string) (Node, error) {
	name, rest, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || rest == "" {
		return Node{}, fmt.Errorf("%w: --node %q: want NAME=DSN[,app=NAME][,admin=DSN]", ErrUsage, s)
	}
	parts := strings.Split(rest, ",")
	n := Node{Name: strings.TrimSpace(name), DSN: strings.TrimSpace(parts[0])}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch strings.TrimSpace(k) {
		case "app":
			n.App = strings.TrimSpace(v)
		case "admin":
			n.AdminDSN = strings.TrimSpace(v)
		default:
			return Node{}, fmt.Errorf("%w: --node %s: unknown option %q after a comma (want app= or admin=; a DSN holds no comma: one host per node)", ErrUsage, n.Name, k)
		}
	}
	if !nodeNameRe.MatchString(n.Name) {
		return Node{}, fmt.Errorf("%w: --node %q: the name must be 1-8 lower-case letters, digits or _, starting with a letter", ErrUsage, n.Name)
	}
	for _, dsn := range []string{n.DSN, n.AdminDSN} {
		if dsn == "" {
			continue
		}
		if err := refusePassword(dsn); err != nil {
			return Node{}, fmt.Errorf("%w: --node %s: %w", ErrUsage, n.Name, err)
		}
	}
	cfg, err := pgconn.ParseConfig(n.DSN)
	if err != nil {
		return Node{}, fmt.Errorf("%w: --node %s: %w", ErrUsage, n.Name, err)
	}
	for _, fb := range cfg.Fallbacks { // sslmode=prefer adds one for the same host
		if fb.Host != cfg.Host || fb.Port != cfg.Port {
			return Node{}, fmt.Errorf("%w: --node %s: one host per node, please", ErrUsage, n.Name)
		}
	}
	n.Host, n.Port, n.User = cfg.Host, cfg.Port, cfg.User
	if !hostRe.MatchString(n.Host) {
		return Node{}, fmt.Errorf("%w: --node %s: host %q: only letters, digits and . - _ : / (it goes into shell commands)", ErrUsage, n.Name, n.Host)
	}
	if n.AdminDSN != "" {
		if _, err := pgconn.ParseConfig(n.AdminDSN); err != nil {
			return Node{}, fmt.Errorf("%w: --node %s admin=: %w", ErrUsage, n.Name, err)
		}
	}
	return n, nil
}

var (
	nodeNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,7}$`)
	hostRe     = regexp.MustCompile(`^[A-Za-z0-9._:/-]+$`)
	kvPassRe   = regexp.MustCompile(`(^|\s)password\s*=`)
)

// refusePassword fails when dsn carries a password, in a URL's user
// information, its query, or a key=value pair.
func refusePassword(dsn string) error {
	why := "use STRONGCHECK_PASSWORD_<NODE>, PGPASSWORD or a pgpass file (PGPASSFILE) instead"
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// The parse error would quote the DSN, password and all.
			return fmt.Errorf("connection string is not a valid URL")
		}
		if _, set := u.User.Password(); set || u.Query().Has("password") {
			return fmt.Errorf("%w: %s", ErrPassword, why)
		}
		return nil
	}
	if kvPassRe.MatchString(dsn) {
		return fmt.Errorf("%w: %s", ErrPassword, why)
	}
	return nil
}

// ParseNodesFile reads a --nodes-file: one NAME=DSN[,app=..][,admin=..] a
// line; blank lines and lines starting with # are skipped.
func ParseNodesFile(path string) ([]Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: --nodes-file: %w", ErrUsage, err)
	}
	defer f.Close()
	var out []Node
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		n, err := ParseNode(s)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, n)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: --nodes-file: %w", ErrUsage, err)
	}
	return out, nil
}

// CheckNodes refuses a node list strongcheck cannot run against: fewer
// than two nodes, or a name, DSN or application_name given twice.
func CheckNodes(nodes []Node) error {
	if len(nodes) < 2 {
		return fmt.Errorf("%w: give at least two nodes (--node NAME=DSN, repeatable, or --nodes-file), got %d", ErrUsage, len(nodes))
	}
	seen := map[string]string{}
	for _, n := range nodes {
		for _, k := range []string{"name " + n.Name, "app " + n.AppName(), fmt.Sprintf("address %s:%d", n.Host, n.Port)} {
			if prev, ok := seen[k]; ok {
				return fmt.Errorf("%w: nodes %s and %s share the %s", ErrUsage, prev, n.Name, k)
			}
			seen[k] = n.Name
		}
	}
	return nil
}

// PasswordVar is the environment variable that holds node's password
// (admin: the admin DSN's).
func PasswordVar(node string, admin bool) string {
	if admin {
		return "STRONGCHECK_ADMIN_PASSWORD_" + strings.ToUpper(node)
	}
	return "STRONGCHECK_PASSWORD_" + strings.ToUpper(node)
}

// withParams adds key=value parameters to dsn, in its own form (URL query
// or key=value pairs). Values are quoted for the key=value form.
func withParams(dsn string, kv [][2]string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return dsn
		}
		q := u.Query()
		for _, p := range kv {
			q.Set(p[0], p[1])
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	var b strings.Builder
	b.WriteString(dsn)
	for _, p := range kv {
		v := strings.ReplaceAll(strings.ReplaceAll(p[1], `\`, `\\`), `'`, `\'`)
		fmt.Fprintf(&b, " %s='%s'", p[0], v)
	}
	return b.String()
}
