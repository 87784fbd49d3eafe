package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// agent is one long-running process of an HA manager on a node (an etcd
// member, Patroni, a pg_autoctl keeper or monitor), a child of this process
// started as the postgres user inside the node's namespace under `tini -s`.
// tini is a subreaper: the processes the agent leaves behind are reaped by
// it at once (Patroni starts its postmaster as an orphan by design), rather
// than lingering as zombies under a PID 1 that reaps slowly; a zombie
// postmaster would make the next start refuse its postmaster.pid.
type agent struct {
	name    string // "n1/patroni", "monitor/pg_autoctl", ...
	logPath string
	// marker is a path on the agent's command line (its config or data
	// directory): the registry checks it before signalling a recorded PID.
	marker string

	supervised
}

// start launches argv in namespace ns as user u under tini, with env, its
// output appended to the agent's log.
func (a *agent) start(ns string, u pgUser, env, argv []string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.busy(a.name); err != nil {
		return err
	}
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", a.name, err)
	}
	defer logf.Close()
	tini, err := exec.LookPath("tini")
	if err != nil {
		return fmt.Errorf("%w: tini (apt-get install tini)", ErrNoTool)
	}
	args := []string{"--net=/run/netns/" + ns, "-S", strconv.Itoa(int(u.uid)), "-G", strconv.Itoa(int(u.gid)), "--", tini, "-s", "-w", "--"}
	cmd := exec.Command("nsenter", append(args, argv...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = env
	cmd.Dir = "/"
	// Own process group: a Ctrl-C reaches the harness, which tears the
	// agents down in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.launch(cmd); err != nil {
		return fmt.Errorf("%s: start: %w", a.name, err)
	}
	return nil
}

// wait waits until the agent exits and returns how it ended; when ctx
// ends first, the agent and everything below it are crashed.
func (a *agent) wait(ctx context.Context) error {
	a.mu.Lock()
	ex := a.exited
	a.mu.Unlock()
	select {
	case <-ex:
	case <-ctx.Done():
		if err := crashAgents([]*agent{a}); err != nil {
			return fmt.Errorf("%s: %w (and ending it: %v)", a.name, ctx.Err(), err)
		}
		return fmt.Errorf("%s: %w", a.name, ctx.Err())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waitErr
}

// procTable maps every PID to its parent, read once from /proc.
func procTable() map[int]int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := map[int]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces; parse after ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		out[p] = pp
	}
	return out
}

// descendants lists every process below root (not root itself).
func descendants(root int) []int {
	if root <= 0 {
		return nil
	}
	kids := map[int][]int{}
	for p, pp := range procTable() {
		kids[pp] = append(kids[pp], p)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, k := range kids[p] {
			out = append(out, k)
			queue = append(queue, k)
		}
	}
	return out
}

// freezeTrees SIGSTOPs every descendant of roots until no new process
// appears (a process forked meanwhile is stopped in the next round) and
// returns them. The roots (tini) keep running, to reap.
func freezeTrees(roots []int) []int {
	seen := map[int]bool{}
	var all []int
	for round := 0; round < 20; round++ {
		fresh := 0
		for _, r := range roots {
			for _, p := range descendants(r) {
				if !seen[p] {
					seen[p] = true
					all = append(all, p)
					_ = syscall.Kill(p, syscall.SIGSTOP)
					fresh++
				}
			}
		}
		if fresh == 0 {
			break
		}
	}
	return all
}

// crashAgents kills the agents and everything below them as a crash would:
// freeze every process, SIGKILL them all, and wait until each PID has
// vanished from /proc (reaped, not a zombie) and the agents have exited.
func crashAgents(agents []*agent) error {
	var roots []int
	for _, a := range agents {
		if p := a.pid(); p > 0 && a.running() {
			roots = append(roots, p)
		}
	}
	if len(roots) == 0 {
		return nil
	}
	procs := freezeTrees(roots)
	for _, p := range procs {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	for _, a := range agents {
		a.mu.Lock()
		a.paused = false
		a.mu.Unlock()
	}
	return waitAgents(agents, procs, defaultGoneTimeout)
}

// waitAgents waits until every agent has exited (tini exits with its
// child) and every one of procs has vanished.
func waitAgents(agents []*agent, procs []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, a := range agents {
		a.mu.Lock()
		ex := a.exited
		a.mu.Unlock()
		if ex == nil {
			continue
		}
		select {
		case <-ex:
		case <-time.After(time.Until(deadline)):
			return fmt.Errorf("%s still running after %v", a.name, timeout)
		}
	}
	return waitVanished(procs, time.Until(deadline))
}

// waitVanished waits until none of pids exists any more, zombies included:
// a zombie postmaster still holds its PID, which the next postmaster (or
// its manager) reads from postmaster.pid as a live server.
func waitVanished(pids []int, timeout time.Duration) error {
	exists := func(pid int) bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		return err == nil
	}
	return waitNone(pids, exists, pidOf, 5*time.Millisecond, timeout, "still present")
}

// stopAgents asks the agents to shut down cleanly (SIGTERM, which tini
// passes on; Patroni and pg_autoctl stop PostgreSQL first), in the given
// order, each within timeout; what is left then is crashed.
func stopAgents(agents []*agent, timeout time.Duration) error {
	var errs []error
	for _, a := range agents {
		if !a.running() {
			continue
		}
		resumeAgent(a)
		procs := descendants(a.pid())
		_ = syscall.Kill(a.pid(), syscall.SIGTERM)
		if err := waitAgents([]*agent{a}, procs, timeout); err != nil {
			errs = append(errs, fmt.Errorf("%s did not stop within %v, crashed: %w", a.name, timeout, crashAgents([]*agent{a})))
		}
	}
	return errors.Join(errs...)
}

// pauseAgents SIGSTOPs every process of the agents, tini included.
func pauseAgents(agents []*agent) error {
	var roots []int
	for _, a := range agents {
		if a.running() {
			roots = append(roots, a.pid())
		}
	}
	if len(roots) == 0 {
		return fmt.Errorf("not running")
	}
	for _, r := range roots {
		_ = syscall.Kill(r, syscall.SIGSTOP)
	}
	freezeTrees(roots)
	for _, a := range agents {
		a.mu.Lock()
		a.paused = true
		a.mu.Unlock()
	}
	return nil
}

func resumeAgent(a *agent) {
	p := a.pid()
	if p <= 0 {
		return
	}
	for _, k := range descendants(p) {
		_ = syscall.Kill(k, syscall.SIGCONT)
	}
	_ = syscall.Kill(p, syscall.SIGCONT)
	a.mu.Lock()
	a.paused = false
	a.mu.Unlock()
}

// isOurAgent reports whether pid runs tini with marker on its command line
// (guards against PID reuse before signalling a PID from the registry).
func isOurAgent(pid int, marker string) bool {
	if pid <= 0 || marker == "" {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	if len(args) == 0 || filepath.Base(args[0]) != "tini" {
		return false
	}
	return strings.Contains(string(b), marker)
}

// killStaleAgent crashes a recorded agent of a dead harness and all below
// it, and the postmaster its data directory names (it may have escaped
// the agent's tree), and returns what it killed, for the caller to wait on.
func killStaleAgent(rec agentRecord) []proc {
	var procs []int
	if isOurAgent(rec.PID, rec.Marker) {
		procs = freezeTrees([]int{rec.PID})
		_ = syscall.Kill(rec.PID, syscall.SIGKILL)
		for _, p := range procs {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		procs = append(procs, rec.PID)
	}
	killed := procsOf(procs)
	if rec.DataDir != "" {
		if pid := postmasterPID(rec.DataDir); pid > 0 {
			killed = append(killed, killStale(pid, rec.DataDir)...)
		}
	}
	return killed
}

// postmasterPID reads the PID in dataDir's postmaster.pid (0 when none).
func postmasterPID(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// agentRecord is an agent in the registry: its tini's PID, the marker on
// its command line, and the data directory of the postmaster it runs.
type agentRecord struct {
	PID     int    `json:"pid"`
	Marker  string `json:"marker"`
	DataDir string `json:"data_dir,omitempty"`
}
