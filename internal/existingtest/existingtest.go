// Package existingtest builds, for tests, a cluster that strongcheck's
// existing backend did not build: a local three-node cluster (cluster/local)
// whose servers the tests then fault from the outside only, with a shell
// script of their own (kill -KILL of the postmaster read from postmaster.pid,
// a start from postmaster.opts under tini in the node's namespace, nftables
// in the node's namespace for a partition), as a user's fault commands
// would. Nothing here uses *testing.T: the tests decide what a failure is.
package existingtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/existing"
	"github.com/strongcheck/strongcheck/cluster/local"
)

// Fixture is a running local cluster seen as a user's cluster.
type Fixture struct {
	Local *local.Cluster
	// Dir holds the fault script and the logs of servers it started.
	Dir string
	// Script is the fault script: Script VERB NODE [PEER_HOSTS...].
	Script string
	// Passwords are the clients' (STRONGCHECK_PASSWORD_<NODE>) and the
	// superuser's (STRONGCHECK_ADMIN_PASSWORD_<NODE>), per node.
	Passwords, AdminPasswords map[string]string

	ns       map[string]string
	unsetEnv func()
}

// Up starts a three-node local cluster in dir (settings as cluster/local's
// defaults), writes the fault script and exports the nodes' password
// variables (as a user would); Close unsets them.
func Up(ctx context.Context, dir string) (*Fixture, error) {
	lc, err := local.Up(ctx, local.Options{Dir: filepath.Join(dir, "cluster"), Subnet: local.AutoSubnet})
	if err != nil {
		return nil, err
	}
	f := &Fixture{Local: lc, Dir: dir, Passwords: map[string]string{}, AdminPasswords: map[string]string{}, ns: map[string]string{}}
	if err := f.setup(); err != nil {
		_ = f.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	f.unsetEnv = f.env()
	return f, nil
}

func (f *Fixture) setup() error {
	for _, n := range f.Local.Nodes() {
		f.Passwords[n] = password(f.Local.ConnString(n, false))
		f.AdminPasswords[n] = password(f.Local.ConnString(n, true))
		ns, err := namespaceOf(f.Local.Addr(n))
		if err != nil {
			return err
		}
		f.ns[n] = ns
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	f.Script = filepath.Join(f.Dir, "fault.sh")
	return os.WriteFile(f.Script, []byte(f.script(u.Uid, u.Gid)), 0o700)
}

// password is the value of a key=value DSN's password.
func password(dsn string) string {
	for _, fld := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(fld, "password="); ok {
			return v
		}
	}
	return ""
}

// namespaceOf finds the network namespace that holds addr.
func namespaceOf(addr string) (string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return "", fmt.Errorf("ip netns list: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		a, err := exec.Command("ip", "-n", f[0], "-4", "-o", "addr", "show").Output()
		if err == nil && strings.Contains(string(a), " "+addr+"/") {
			return f[0], nil
		}
	}
	return "", fmt.Errorf("no network namespace holds %s", addr)
}

// script is the fault script: what a user would write around ssh.
func (f *Fixture) script(uid, gid string) string {
	var cases strings.Builder
	for _, n := range f.Local.Nodes() {
		fmt.Fprintf(&cases, "  %s) ns=%s; data=%s ;;\n", n, f.ns[n], filepath.Join(f.Local.DataDir(), n))
	}
	return `#!/bin/sh
# A user's fault script: VERB NODE [PEER_HOST...]
verb=$1 node=$2; shift 2
case $node in
` + cases.String() + `  *) echo "no node $node" >&2; exit 2 ;;
esac
pm() { head -1 "$data/postmaster.pid"; }
# signal SIG: the postmaster (it must exist), then the children it had
# (a backend may have exited meanwhile)
signal() { pid=$(pm) && kids=$(pgrep -P $pid); kill -$1 $pid || exit 1; kill -$1 $kids 2>/dev/null; true; }
case $verb in
kill)   signal KILL ;;
stop)   pid=$(pm) && kill -INT $pid && while kill -0 $pid 2>/dev/null; do sleep 0.05; done ;;
pause)  signal STOP ;;
resume) signal CONT ;;
start)  # the command line the postmaster last ran with, under tini (it reaps)
        opts=$(cat "$data/postmaster.opts")
        nsenter --net=/run/netns/$ns -S ` + uid + ` -G ` + gid + ` -- tini -s -- sh -c "exec $opts" \
            >>"` + f.Dir + `/$node.log" 2>&1 </dev/null &
        ;;
partition)
        peers=$(echo "$@" | tr ' ' ',')
        printf 'table inet sc_user_cut {\n chain in { type filter hook input priority 0; ip saddr { %s } drop; }\n chain out { type filter hook output priority 0; ip daddr { %s } drop; }\n}\n' "$peers" "$peers" |
            ip netns exec $ns nft -f -
        ;;
heal)   ip netns exec $ns nft delete table inet sc_user_cut 2>/dev/null || true ;;
*)      echo "unknown verb $verb" >&2; exit 2 ;;
esac
`
}

// Nodes returns the --node flags for the cluster: the clients connect as
// the workload role, strongcheck's admin connections as the superuser.
func (f *Fixture) Nodes() []string {
	var out []string
	for _, n := range f.Local.Nodes() {
		dsn := fmt.Sprintf("host=%s port=%d dbname=%s sslmode=disable", f.Local.Addr(n), local.Port, local.DBName)
		out = append(out, fmt.Sprintf("%s=%s user=%s,admin=%s user=postgres", n, dsn, local.UserName, dsn))
	}
	return out
}

// FaultCmds returns the --fault-cmd flags running the fault script.
func (f *Fixture) FaultCmds() []string {
	var out []string
	for _, v := range []string{"kill", "start", "stop", "pause", "resume"} {
		out = append(out, fmt.Sprintf("%s=%s %s {node}", v, f.Script, v))
	}
	return append(out, "partition="+f.Script+" partition {node} {peer_hosts}", "heal="+f.Script+" heal {node}")
}

// env sets the nodes' password variables and returns a function that
// unsets them.
func (f *Fixture) env() func() {
	var names []string
	for n, pw := range f.Passwords {
		k := "STRONGCHECK_PASSWORD_" + strings.ToUpper(n)
		ka := "STRONGCHECK_ADMIN_PASSWORD_" + strings.ToUpper(n)
		os.Setenv(k, pw)
		os.Setenv(ka, f.AdminPasswords[n])
		names = append(names, k, ka)
	}
	return func() {
		for _, k := range names {
			os.Unsetenv(k)
		}
	}
}

// Secrets are every password of the cluster.
func (f *Fixture) Secrets() []string {
	var out []string
	for n := range f.Passwords {
		out = append(out, f.Passwords[n], f.AdminPasswords[n])
	}
	return out
}

// Admin is the superuser DSN of node, password included.
func (f *Fixture) Admin(node string) string { return f.Local.ConnString(node, true) }

// AsCluster is the fixture's cluster, for the SQL helpers of package
// cluster.
func (f *Fixture) AsCluster() cluster.Cluster { return f.Local }

// Close heals, kills the servers the script may have started (they are
// not the local backend's children), then tears the local cluster down.
func (f *Fixture) Close(ctx context.Context) error {
	if f.unsetEnv != nil {
		f.unsetEnv()
	}
	var errs []error
	for _, n := range f.Local.Nodes() {
		if f.Script != "" {
			if out, err := exec.Command(f.Script, "heal", n).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("heal %s: %w: %s", n, err, out))
			}
		}
		b, err := os.ReadFile(filepath.Join(f.Local.DataDir(), n, "postmaster.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
		if err != nil || syscall.Kill(pid, 0) != nil {
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = syscall.Kill(pid, syscall.SIGQUIT) // immediate shutdown: children go too
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	errs = append(errs, f.Local.Close(ctx))
	return errors.Join(errs...)
}

// Options attach the existing backend to the fixture with its fault
// script, faults allowed (the primary n1's cluster_name is n1).
func (f *Fixture) Options() (existing.Options, error) {
	o := existing.Options{Commands: existing.Commands{}, AllowFaults: "n1", FaultsPlanned: true, Failover: existing.FailoverExternal}
	for _, s := range f.Nodes() {
		n, err := existing.ParseNode(s)
		if err != nil {
			return o, err
		}
		o.Nodes = append(o.Nodes, n)
	}
	for _, s := range f.FaultCmds() {
		if err := existing.ParseFaultCmd(o.Commands, s); err != nil {
			return o, err
		}
	}
	return o, nil
}
