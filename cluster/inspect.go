package cluster

import "context"

// ProcessState is a node's server processes as the kernel sees them, not as
// a backend's bookkeeping believes them to be.
type ProcessState struct {
	// Postmaster says the node's postmaster exists and is not a zombie.
	Postmaster bool `json:"postmaster"`
	// Running counts the postmaster and its children that are neither
	// stopped nor zombies; Stopped those in state T (SIGSTOP).
	Running int `json:"running"`
	Stopped int `json:"stopped"`
}

// Gone reports whether no server process of the node remains.
func (p ProcessState) Gone() bool { return !p.Postmaster && p.Running == 0 && p.Stopped == 0 }

// Frozen reports whether the node's processes exist and every one of them
// is stopped.
func (p ProcessState) Frozen() bool { return p.Postmaster && p.Running == 0 && p.Stopped > 0 }

// Inspector is implemented by backends that can observe what a fault did:
// the nemesis verifies every kill, pause and partition with it. A backend
// without it cannot have its faults verified, and a run on it says so.
type Inspector interface {
	// Reachable reports whether node from can open a TCP connection to
	// node to's PostgreSQL port right now, through the network path
	// replication uses. A refused connection is reachable (the network
	// carried the refusal); a timeout is not.
	Reachable(ctx context.Context, from, to string) (bool, error)
	// Processes reports node's server processes as the kernel sees them.
	Processes(ctx context.Context, node string) (ProcessState, error)
}
