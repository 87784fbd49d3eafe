package k8s

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stand-in postmaster: named postgres, writes postmaster.pid, has two
// children, and shuts down on SIGTERM like pg_ctl's fast mode asks.
const fakePostgres = `#!/bin/bash
echo $$ > "$PGDATA/postmaster.pid"
sleep 1000 & k1=$!
sleep 1000 & k2=$!
trap 'kill $k1 $k2; rm -f "$PGDATA/postmaster.pid"; exit 0' TERM INT
wait
`

const fakePgCtl = `#!/bin/bash
pid=$(head -n1 "$PGDATA/postmaster.pid") || exit 1
kill -TERM "$pid"
while kill -0 "$pid" 2>/dev/null && [ -f "$PGDATA/postmaster.pid" ]; do sleep 0.05; done
`

const fakePgIsready = `#!/bin/bash
pid=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null
`

// TestSupervisorScripts runs the supervisor and the kill, start, pause,
// resume and stop scripts for real, with a stand-in postgres: they must
// crash, freeze, thaw and restart the postmaster and its children while the
// supervisor (the container) keeps running.
func TestSupervisorScripts(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	pgdata := filepath.Join(root, "pgdata")
	ctl := filepath.Join(root, "ctl")
	for _, d := range []string{bin, pgdata} {
		require.NoError(t, os.MkdirAll(d, 0o755))
	}
	for name, body := range map[string]string{"postgres": fakePostgres, "pg_ctl": fakePgCtl, "pg_isready": fakePgIsready} {
		require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755))
	}
	local := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(s, ctlDir, ctl), pgData, pgdata)
	}
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "PGDATA="+pgdata)

	sup := exec.Command(bash, "-c", local(supervisorScript), "strongcheck-supervisor", "-c", "x=y")
	sup.Env = env
	sup.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, sup.Start())
	t.Cleanup(func() {
		syscall.Kill(-sup.Process.Pid, syscall.SIGKILL)
		sup.Wait()
	})

	run := func(cmd []string) (string, error) {
		c := exec.Command(bash, append([]string{"-c", local(cmd[2])}, cmd[3:]...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	postmaster := func() int {
		b, err := os.ReadFile(filepath.Join(pgdata, "postmaster.pid"))
		if err != nil {
			return 0
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return pid
	}
	state := func(pid int) string { // R, S, T, Z, or "" when gone
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return ""
		}
		s := string(b)
		return strings.Fields(s[strings.LastIndex(s, ")")+1:])[0]
	}
	kids := func(pid int) []int {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
		var out []int
		for _, f := range strings.Fields(string(b)) {
			k, _ := strconv.Atoi(f)
			out = append(out, k)
		}
		return out
	}
	want := func() string {
		b, _ := os.ReadFile(filepath.Join(ctl, "want"))
		return strings.TrimSpace(string(b))
	}

	out, err := run(startCmd(10))
	require.NoError(t, err, out)
	pm := postmaster()
	require.NotZero(t, pm)
	require.Eventually(t, func() bool { return len(kids(pm)) == 2 }, 5*time.Second, 20*time.Millisecond)
	children := kids(pm)

	// Pause freezes the postmaster and its children; Resume thaws them.
	out, err = run(pauseCmd())
	require.NoError(t, err, out)
	// SIGSTOP takes effect when a process is next scheduled: on a busy
	// machine that can be after the signal's sender returned.
	stopped := func(p int) func() bool { return func() bool { return state(p) == "T" } }
	for _, p := range append([]int{pm}, children...) {
		assert.Eventually(t, stopped(p), 2*time.Second, 10*time.Millisecond, "pid %d after pause", p)
	}
	processes := func() ProcessState {
		out, err := run(processesCmd())
		require.NoError(t, err, out)
		ps, err := parseProcesses(out)
		require.NoError(t, err, out)
		return ps
	}
	assert.Equal(t, ProcessState{Postmaster: true, Stopped: 3}, processes(), "Processes of a paused node")
	out, err = run(resumeCmd())
	require.NoError(t, err, out)
	for _, p := range append([]int{pm}, children...) {
		assert.NotEqual(t, "T", state(p), "pid %d after resume", p)
	}
	assert.Equal(t, ProcessState{Postmaster: true, Running: 3}, processes(), "Processes of a resumed node")

	// Signal-backends stops one child of the postmaster, never the
	// postmaster itself or a process that is not its child.
	out, err = run(signalBackendsCmd("STOP", []int{children[0], pm, sup.Process.Pid}))
	require.NoError(t, err, out)
	assert.Equal(t, strconv.Itoa(children[0]), strings.TrimSpace(out), "only the child was signalled")
	assert.Eventually(t, stopped(children[0]), 2*time.Second, 10*time.Millisecond, "the child after SIGSTOP")
	assert.NotEqual(t, "T", state(children[1]))
	assert.NotEqual(t, "T", state(pm))
	assert.Equal(t, ProcessState{Postmaster: true, Running: 2, Stopped: 1}, processes())
	out, err = run(signalBackendsCmd("CONT", []int{children[0]}))
	require.NoError(t, err, out)
	assert.Equal(t, ProcessState{Postmaster: true, Running: 3}, processes())

	// Kill: everything gone, the supervisor still runs and does not restart.
	out, err = run(killCmd())
	require.NoError(t, err, out)
	for _, p := range append([]int{pm}, children...) {
		s := state(p)
		assert.True(t, s == "" || s == "Z", "pid %d after kill: %s", p, s)
	}
	assert.Equal(t, "stop", want())
	assert.Equal(t, ProcessState{}, processes(), "Processes of a killed node")
	// The supervisor reaps the postmaster and records its exit status; on
	// a loaded machine its shell may take a while to be scheduled.
	exitFile := func() string {
		b, _ := os.ReadFile(filepath.Join(ctl, "exit"))
		return strings.TrimSpace(string(b))
	}
	require.Eventually(t, func() bool { return state(pm) == "" && exitFile() != "" }, 10*time.Second, 20*time.Millisecond,
		"the supervisor reaps the postmaster and records its exit")
	assert.Equal(t, "1 137", exitFile(), "exit count and SIGKILL status")
	time.Sleep(1500 * time.Millisecond) // longer than the supervisor's restart delay
	assert.Equal(t, pm, postmaster(), "no restart after a kill: the stale pid file stays")
	assert.Equal(t, "1 137", exitFile(), "no second start and exit")
	require.Nil(t, sup.ProcessState, "the supervisor (the container) is still running")

	// Pause of a down node fails with status 3; Kill of a down node is a no-op.
	_, err = run(pauseCmd())
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 3, ee.ExitCode())
	out, err = run(killCmd())
	require.NoError(t, err, out)
	assert.Contains(t, out, "not running")

	// Start brings a new postmaster; Stop shuts it down cleanly.
	out, err = run(startCmd(10))
	require.NoError(t, err, out)
	pm2 := postmaster()
	assert.NotEqual(t, pm, pm2)
	assert.NotEqual(t, "", state(pm2))
	out, err = run(stopCmd())
	require.NoError(t, err, out)
	assert.Equal(t, "", state(pm2))
	assert.Equal(t, "stop", want())
	assert.NoFileExists(t, filepath.Join(pgdata, "postmaster.pid"))
}
