package k8s

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/strongcheck/strongcheck/cluster"
)

// ProcessState is cluster.ProcessState: a node's server processes as the
// kernel of its pod sees them.
type ProcessState = cluster.ProcessState

var _ cluster.Inspector = (*Cluster)(nil)

// probeSeconds bounds one reachability probe (coreutils' timeout): a
// dropped SYN is retried by the kernel only after a second, so anything
// that answers answers sooner.
const probeSeconds = "1"

// reachScript takes the peer's IP as $1 and port as $2 and prints one word: open (the
// connection was made), refused (the network carried a refusal: the port
// is closed, the path is not cut), cut (the kernel refused to send or
// found no route: an nftables output drop says "Operation not permitted")
// or timeout (no answer: an input drop on either side). Anything else is an
// error with bash's message on stderr. It runs in the postgres container,
// which shares the pod's network namespace with the fault sidecar, so the
// probe takes the path replication takes.
const reachScript = `out=$(timeout ` + probeSeconds + ` bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>&1)
rc=$?
if [ "$rc" = 0 ]; then echo open; exit 0; fi
if [ "$rc" = 124 ]; then echo timeout; exit 0; fi
case "$out" in
*"Connection refused"*) echo refused ;;
*"not permitted"* | *"No route to host"* | *"unreachable"*) echo cut ;;
*) echo "probe of $1 failed (status $rc): $out" >&2; exit 1 ;;
esac
`

// processesScript prints the state letter of the postmaster ("pm X") and
// of each of its children ("child X"), or "none" when no postmaster runs
// (postmaster ignores a stale postmaster.pid and a zombie).
const processesScript = shellPrelude + `
pm=$(postmaster)
if [ -z "$pm" ]; then echo none; exit 0; fi
kind=pm
for p in "$pm" $(children "$pm"); do
	if read -r s 2>/dev/null < "/proc/$p/stat"; then
		s=${s##*) }
		echo "$kind ${s%% *}"
	fi
	kind=child
done
`

func reachCmd(ip string) []string {
	return bash(reachScript, "strongcheck-reach", ip, strconv.Itoa(pgPort))
}
func processesCmd() []string { return bash(processesScript, "strongcheck-processes") }

// Reachable implements cluster.Inspector: from's pod opens a TCP connection
// to to's pod IP and port 5432 (bash's /dev/tcp under timeout). A refused
// connection is reachable (the network carried the refusal); a timeout or
// a send the kernel refused (a partition's output drop) is not.
func (c *Cluster) Reachable(ctx context.Context, from, to string) (bool, error) {
	if err := c.check(to); err != nil {
		return false, err
	}
	ip := c.ip(to)
	if ip == "" {
		return false, fmt.Errorf("%w: reachable %s -> %s: no pod IP known for %s", ErrKubernetes, from, to, to)
	}
	out, err := c.run(ctx, "probe "+to+" from", from, postgresCtr, reachCmd(ip), nil, opTimeout)
	if err != nil {
		return false, err
	}
	switch w := strings.TrimSpace(out); w {
	case "open", "refused":
		return true, nil
	case "cut", "timeout":
		return false, nil
	default:
		return false, fmt.Errorf("%w: reachable %s -> %s: unexpected probe output %q", ErrKubernetes, from, to, w)
	}
}

// Processes implements cluster.Inspector from /proc inside node's postgres
// container: the postmaster the supervisor runs and its children.
func (c *Cluster) Processes(ctx context.Context, node string) (ProcessState, error) {
	out, err := c.run(ctx, "processes", node, postgresCtr, processesCmd(), nil, opTimeout)
	if err != nil {
		return ProcessState{}, err
	}
	ps, err := parseProcesses(out)
	if err != nil {
		return ProcessState{}, fmt.Errorf("%w: processes of %s: %w", ErrKubernetes, node, err)
	}
	return ps, nil
}

// parseProcesses reads processesScript's output.
func parseProcesses(out string) (ProcessState, error) {
	var ps ProcessState
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 1 && f[0] == "none":
			return ProcessState{}, nil
		case len(f) != 2 || (f[0] != "pm" && f[0] != "child") || len(f[1]) != 1:
			return ProcessState{}, fmt.Errorf("unexpected line %q", line)
		}
		live := true
		switch f[1] {
		case "Z", "X", "x":
			live = false
		case "T", "t":
			ps.Stopped++
		default:
			ps.Running++
		}
		if f[0] == "pm" {
			ps.Postmaster = live
		}
	}
	return ps, nil
}
