package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// RegistryDir holds one entry per local cluster on this machine: the names it
// owns (namespaces, bridge, veths), its server PIDs and its folder; and each
// cluster's runtime folder (paths.go). It lives on tmpfs where /run is one,
// so it vanishes on reboot together with what it describes. An
// entry's lock is held by the process that owns the cluster; a cluster whose
// owner died without tearing down (kill -9, crash) has a free lock and is
// swept by the next Up or Down. A detached cluster (`strongcheck cluster up`)
// outlives its creator on purpose and is removed only by Down of its folder.
var RegistryDir = "/run/strongcheck"

// entry is one cluster's record in the registry.
type entry struct {
	ID         string            `json:"id"`
	Dir        string            `json:"dir"`
	Subnet     string            `json:"subnet"`
	Bridge     string            `json:"bridge"`
	Namespaces []string          `json:"namespaces"`
	Veths      []string          `json:"veths"`
	PIDs       map[string]int    `json:"pids"` // node -> postmaster PID
	DataDirs   map[string]string `json:"data_dirs"`
	Owner      int               `json:"owner"`
	Detached   bool              `json:"detached"`
	// Agents are an HA manager's processes (agent.go), by name.
	Agents map[string]agentRecord `json:"agents,omitempty"`
}

func entryPath(id string) string { return filepath.Join(RegistryDir, id+".json") }
func lockPath(id string) string  { return filepath.Join(RegistryDir, id+".lock") }

func (e *entry) save() error {
	if err := os.MkdirAll(RegistryDir, 0o700); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	tmp := entryPath(e.ID) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return os.Rename(tmp, entryPath(e.ID))
}

func loadEntry(path string) (*entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("registry entry %s: %w", path, err)
	}
	return &e, nil
}

func entries() ([]*entry, error) {
	paths, err := filepath.Glob(filepath.Join(RegistryDir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*entry
	for _, p := range paths {
		e, err := loadEntry(p)
		if err != nil {
			continue // a torn entry: its lock decides below, by file name
		}
		out = append(out, e)
	}
	return out, nil
}

// ownerLock is an flock held for as long as a process owns a cluster.
type ownerLock struct{ f *os.File }

// lockEntry takes id's owner lock without blocking; ok is false if another
// live process holds it.
func lockEntry(id string) (l *ownerLock, ok bool, err error) {
	if err := os.MkdirAll(RegistryDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("registry: %w", err)
	}
	f, err := os.OpenFile(lockPath(id), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("registry: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("registry lock: %w", err)
	}
	return &ownerLock{f}, true, nil
}

func (l *ownerLock) release() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}

// withRegistryLock serialises changes to the registry (subnet choice, sweeps)
// across processes.
func withRegistryLock(fn func() error) error {
	if err := os.MkdirAll(RegistryDir, 0o700); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(RegistryDir, "registry.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("registry lock: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// Sweep tears down every cluster whose owner died without doing so (and
// that is not detached), by the names and PIDs its registry entry records,
// and returns the ids it removed. Clusters of live processes are untouched.
func Sweep() ([]string, error) {
	var removed []string
	err := withRegistryLock(func() error {
		es, err := entries()
		if err != nil {
			return err
		}
		var errs []error
		for _, e := range es {
			if e.Detached {
				continue
			}
			l, ok, err := lockEntry(e.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue // owner alive
			}
			if err := teardownEntry(e); err != nil {
				errs = append(errs, err)
			} else {
				removed = append(removed, e.ID)
			}
			l.release()
		}
		for _, id := range orphanPrivateDirs() {
			if err := removePrivateDirs(id); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
	return removed, err
}

// teardownEntry ends the entry's servers by PID (after checking that each PID
// still runs postgres on that node's data directory) and waits until they
// have left the process table, deletes its namespaces, veths and bridge,
// its data and runtime folders, and removes the entry. It is idempotent.
func teardownEntry(e *entry) error {
	var killed []proc
	for _, a := range e.Agents {
		killed = append(killed, killStaleAgent(a)...)
	}
	for node, pid := range e.PIDs {
		killed = append(killed, killStale(pid, e.DataDirs[node])...)
	}
	// One wait for all nodes: init reaps orphans in rounds.
	err := waitReaped(killed, defaultGoneTimeout)
	if err := errors.Join(err, deleteNetwork(e.Namespaces, e.Veths, e.Bridge)); err != nil {
		return fmt.Errorf("tear down cluster %s: %w", e.ID, err)
	}
	// Only once no server can write into them any more.
	if err := removePrivateDirs(e.ID); err != nil {
		return fmt.Errorf("tear down cluster %s: %w", e.ID, err)
	}
	os.Remove(entryPath(e.ID))
	os.Remove(lockPath(e.ID))
	return nil
}

// isOurPostmaster reports whether pid runs a postgres server on dataDir
// (guards against PID reuse before signalling a PID from the registry).
func isOurPostmaster(pid int, dataDir string) bool {
	if pid <= 0 || dataDir == "" {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != "postgres" {
		return false
	}
	for i, a := range args {
		if a == "-D" && i+1 < len(args) && args[i+1] == dataDir {
			return true
		}
	}
	return false
}

// killStale kills the postmaster pid of a cluster this process does not own
// and its children, and returns them, for waitReaped: none is a child of
// this process, their parents reap them.
func killStale(pid int, dataDir string) []proc {
	if !isOurPostmaster(pid, dataDir) {
		return nil
	}
	// Frozen first, so that it forks nothing between the listing of its
	// children and the kill.
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	kids := children(pid)
	procs := procsOf(append(kids, pid))
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGKILL)
	}
	return procs
}
