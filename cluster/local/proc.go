package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const defaultGoneTimeout = 20 * time.Second

// children lists the PIDs whose parent is pid, in ascending order.
func children(pid int) []int {
	var out []int
	for p, pp := range procTable() {
		if pp == pid {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st := procState(pid)
	return st != 0 && st != 'Z' && st != 'X'
}

// waitGone waits until none of pids is alive (zombies count as gone: they
// hold no memory, ports or files).
func waitGone(pids []int, timeout time.Duration) error {
	return waitNone(pids, alive, pidOf, 5*time.Millisecond, timeout, "still alive")
}

// waitNone polls every poll until still holds for none of xs (PIDs, or
// procs that also know their start time); after timeout it names the PIDs
// left: "processes [..] <state> after <timeout>". It is the one loop that
// waits for processes to go (waitGone, waitVanished, waitReaped), each
// with its own idea of gone.
func waitNone[T any](xs []T, still func(T) bool, pid func(T) int, poll, timeout time.Duration, state string) error {
	deadline := time.Now().Add(timeout)
	for {
		var left []int
		for _, x := range xs {
			if still(x) {
				left = append(left, pid(x))
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v %s after %v", left, state, timeout)
		}
		time.Sleep(poll)
	}
}

// proc names one process for as long as it exists: its PID and its start
// time (in clock ticks since boot), so that a PID the kernel reused for
// another process is not mistaken for it.
type proc struct {
	pid   int
	start uint64
}

// statFields returns the fields of /proc/pid/stat after the command name
// (state first), or nil when there is no such process.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// procOf identifies pid now; ok is false when it does not exist.
func procOf(pid int) (p proc, ok bool) {
	f := statFields(pid)
	if len(f) < 20 {
		return proc{}, false
	}
	// Field 22 of stat is the start time; f[0] is field 3 (state).
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return proc{}, false
	}
	return proc{pid: pid, start: start}, true
}

// present reports whether p is still in the process table, zombie or not.
func (p proc) present() bool {
	q, ok := procOf(p.pid)
	return ok && q.start == p.start
}

// procsOf identifies pids that exist now.
func procsOf(pids []int) []proc {
	var out []proc
	for _, pid := range pids {
		if p, ok := procOf(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// waitReaped waits until every one of procs has left the process table:
// exited and reaped, by this process or by whichever process is its parent
// (after its postmaster died, a server's child belongs to init, which may
// take seconds to reap it). Unlike waitGone, a zombie still counts: a
// teardown is done when `ps` shows nothing of the cluster.
func waitReaped(procs []proc, timeout time.Duration) error {
	return waitNone(procs, proc.present, func(p proc) int { return p.pid }, 10*time.Millisecond, timeout,
		"still in the process table (zombies not reaped by their parent?)")
}

// pidOf is the PID itself, for waitNone over PIDs.
func pidOf(pid int) int { return pid }

// server is one node's postmaster, a child of this process.
type server struct {
	node    string
	dataDir string
	logPath string

	supervised
	// orphans are the children of killed postmasters: after the kill they
	// belong to init and may stay zombies for a while; teardown waits
	// for them.
	orphans []proc
}

// supervised is a child process of this one, reaped when it exits: an
// agent's or a server's. Its fields are guarded by mu.
type supervised struct {
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed once the process has exited and been reaped
	paused  bool
	waitErr error // how the last run ended, once exited is closed
}

func (p *supervised) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *supervised) running() bool {
	p.mu.Lock()
	ex := p.exited
	p.mu.Unlock()
	if ex == nil {
		return false
	}
	select {
	case <-ex:
		return false
	default:
		return true
	}
}

// busy is an error when the last process started still runs. The caller
// holds mu.
func (p *supervised) busy(name string) error {
	if p.exited == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
		return fmt.Errorf("%s already running (pid %d)", name, p.cmd.Process.Pid)
	}
}

// launch starts cmd and reaps it when it exits, recording how it ended.
// The caller holds mu.
func (p *supervised) launch(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited, p.paused, p.waitErr = cmd, make(chan struct{}), false, nil
	go func(cmd *exec.Cmd, done chan struct{}) {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}(cmd, p.exited)
	return nil
}

// start launches postgres in namespace ns as user u with args, and reaps it
// when it exits.
func (s *server) start(ns string, u pgUser, postgres string, args []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.busy(s.node); err != nil {
		return err
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: log: %w", s.node, err)
	}
	nsArgs := []string{"--net=/run/netns/" + ns, "-S", strconv.Itoa(int(u.uid)), "-G", strconv.Itoa(int(u.gid)), "--", postgres, "-D", s.dataDir}
	cmd := exec.Command("nsenter", append(nsArgs, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"LANG=C", "LC_ALL=C", "PATH=/usr/bin:/bin"}
	// Own process group: a Ctrl-C on the terminal reaches the harness,
	// which shuts the servers down in order, not the servers directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = s.launch(cmd)
	logf.Close()
	if err != nil {
		return fmt.Errorf("%s: start postgres: %w", s.node, err)
	}
	return nil
}

// waitReady polls postmaster.pid until the server says ready (primary) or
// standby (hot standby accepting reads), or the process exits.
func (s *server) waitReady(ctx context.Context) error {
	pidPath := filepath.Join(s.dataDir, "postmaster.pid")
	s.mu.Lock()
	ex := s.exited
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	for {
		if b, err := os.ReadFile(pidPath); err == nil {
			lines := strings.Split(string(b), "\n")
			if len(lines) >= 8 && lines[0] == strconv.Itoa(pid) {
				switch strings.TrimSpace(lines[7]) {
				case "ready", "standby":
					return nil
				}
			}
		}
		select {
		case <-ex:
			return fmt.Errorf("%w: %s exited (%v); log tail:\n%s", ErrNodeStart, s.node, s.waitErr, tail(s.logPath, 15))
		case <-ctx.Done():
			return fmt.Errorf("%w: %s not ready: %w; log tail:\n%s", ErrNodeStart, s.node, ctx.Err(), tail(s.logPath, 15))
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// signalAll sends sig to the postmaster and then to its children.
func (s *server) signalAll(sig syscall.Signal, kids []int) {
	pid := s.pid()
	if pid > 0 {
		_ = syscall.Kill(pid, sig)
	}
	for _, k := range kids {
		_ = syscall.Kill(k, sig)
	}
}

// kill crashes the server: freeze every process, then SIGKILL them all, so
// that nothing runs between the first and the last kill; wait until gone.
func (s *server) kill() error {
	if !s.running() {
		return nil
	}
	pid := s.pid()
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	kids := children(pid)
	for _, k := range kids {
		_ = syscall.Kill(k, syscall.SIGSTOP)
	}
	orphans := procsOf(kids)
	s.signalAll(syscall.SIGKILL, kids)
	s.mu.Lock()
	var still []proc
	for _, o := range s.orphans {
		if o.present() {
			still = append(still, o)
		}
	}
	s.orphans = append(still, orphans...)
	s.mu.Unlock()
	return s.waitExit(append(kids, pid), defaultGoneTimeout)
}

// teardown stops the server for good (immediate shutdown, a kill after
// stopAfter) and waits until every process it ran, also those of earlier
// incarnations killed before, has left the process table.
func (s *server) teardown(stopAfter, goneAfter time.Duration) error {
	var procs []proc
	if pid := s.pid(); pid > 0 && s.running() {
		procs = procsOf(append(children(pid), pid))
	}
	err := s.stop(true, stopAfter)
	s.mu.Lock()
	procs = append(procs, s.orphans...)
	s.mu.Unlock()
	if werr := waitReaped(procs, goneAfter); werr != nil {
		return errors.Join(err, fmt.Errorf("%s: %w", s.node, werr))
	}
	return err
}

// stop shuts the server down (fast mode: SIGINT; immediate: SIGQUIT) and
// waits; after timeout it kills.
func (s *server) stop(immediate bool, timeout time.Duration) error {
	if !s.running() {
		return nil
	}
	pid := s.pid()
	kids := children(pid)
	s.resume() // a stopped process would not act on the signal
	sig := syscall.SIGINT
	if immediate {
		sig = syscall.SIGQUIT
	}
	_ = syscall.Kill(pid, sig)
	if err := s.waitExit(append(kids, pid), timeout); err != nil {
		return s.kill()
	}
	return nil
}

func (s *server) waitExit(pids []int, timeout time.Duration) error {
	s.mu.Lock()
	ex := s.exited
	s.mu.Unlock()
	select {
	case <-ex:
	case <-time.After(timeout):
		return fmt.Errorf("%s: postmaster still running after %v", s.node, timeout)
	}
	return waitGone(pids, timeout)
}

func (s *server) pause() error {
	if !s.running() {
		return fmt.Errorf("%s: not running", s.node)
	}
	pid := s.pid()
	_ = syscall.Kill(pid, syscall.SIGSTOP) // first, so it forks nothing new
	for _, k := range children(pid) {
		_ = syscall.Kill(k, syscall.SIGSTOP)
	}
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
	return nil
}

func (s *server) resume() {
	pid := s.pid()
	if pid == 0 {
		return
	}
	for _, k := range children(pid) {
		_ = syscall.Kill(k, syscall.SIGCONT)
	}
	_ = syscall.Kill(pid, syscall.SIGCONT)
	s.mu.Lock()
	s.paused = false
	s.mu.Unlock()
}

// signalBackends sends sig to those of pids that are children of the
// running postmaster, and returns them.
func (s *server) signalBackends(pids []int, sig syscall.Signal) ([]int, error) {
	if !s.running() {
		return nil, fmt.Errorf("%s: not running", s.node)
	}
	ours := children(s.pid())
	var done []int
	for _, p := range pids {
		if slices.Contains(ours, p) && syscall.Kill(p, sig) == nil {
			done = append(done, p)
		}
	}
	return done, nil
}

func (s *server) isPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// execCommand is exec.CommandContext; a variable so tests can observe calls.
var execCommand = exec.CommandContext
