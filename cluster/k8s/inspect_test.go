package k8s

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReachable(t *testing.T) {
	tests := []struct {
		out  string
		err  error
		want bool
		bad  string
	}{
		{out: "open\n", want: true},
		{out: "refused\n", want: true},
		{out: "cut\n", want: false},
		{out: "timeout\n", want: false},
		{out: "what\n", bad: `unexpected probe output "what"`},
		{err: exitErr(1), bad: "probe n2 from n1 in pod strongcheck/pg-n1 container postgres: exit status 1"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(tt.out)+tt.bad, func(t *testing.T) {
			ex := &fakeExec{}
			c := upFake(t, testOptions(newFake(nil), ex))
			ex.take()
			ex.reply = func(call) (string, string, error) { return tt.out, "", tt.err }
			ok, err := c.Reachable(context.Background(), "n1", "n2")
			if tt.bad != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.bad)
				assert.ErrorIs(t, err, ErrKubernetes)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, ok)
			assert.Equal(t, []call{{Pod: "pg-n1", Container: "postgres", Cmd: reachCmd(podIP(1))}}, ex.take(),
				"the probe runs in from's pod, towards to's pod IP")
		})
	}
	t.Run("unknown node", func(t *testing.T) {
		c := upFake(t, testOptions(newFake(nil), &fakeExec{}))
		_, err := c.Reachable(context.Background(), "n1", "n9")
		assert.ErrorContains(t, err, `no node "n9"`)
		_, err = c.Reachable(context.Background(), "n9", "n1")
		assert.ErrorContains(t, err, `no node "n9"`)
	})
}

func TestProcesses(t *testing.T) {
	tests := []struct {
		out  string
		want ProcessState
		bad  string
	}{
		{out: "none\n", want: ProcessState{}},
		{out: "pm S\nchild S\nchild R\nchild D\n", want: ProcessState{Postmaster: true, Running: 4}},
		{out: "pm T\nchild T\nchild t\n", want: ProcessState{Postmaster: true, Stopped: 3}},
		{out: "pm S\nchild Z\nchild T\n", want: ProcessState{Postmaster: true, Running: 1, Stopped: 1}},
		{out: "pm Z\n", want: ProcessState{}},
		{out: "pm\n", bad: `unexpected line "pm"`},
		{out: "12 S\n", bad: `unexpected line "12 S"`},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(strings.TrimSpace(tt.out), "\n", ","), func(t *testing.T) {
			ex := &fakeExec{}
			c := upFake(t, testOptions(newFake(nil), ex))
			ex.take()
			ex.reply = func(call) (string, string, error) { return tt.out, "", nil }
			ps, err := c.Processes(context.Background(), "n3")
			if tt.bad != "" {
				assert.ErrorContains(t, err, tt.bad)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, ps)
			assert.Equal(t, []call{{Pod: "pg-n3", Container: "postgres", Cmd: processesCmd()}}, ex.take())
		})
	}
	t.Run("exec fails", func(t *testing.T) {
		ex := &fakeExec{reply: func(call) (string, string, error) { return "", "", errors.New("connection lost") }}
		c := upFake(t, testOptions(newFake(nil), &fakeExec{}))
		c.exec = ex
		_, err := c.Processes(context.Background(), "n1")
		assert.ErrorIs(t, err, ErrKubernetes)
	})
}

// TestReachScript runs the probe for real against loopback: an open port
// answers open, a closed one refused (both reachable).
func TestReachScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	open := ln.Addr().(*net.TCPAddr).Port
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	defer ln.Close()
	probe := func(port int) string {
		out, err := exec.Command(bash, "-c", reachScript, "probe", "127.0.0.1", strconv.Itoa(port)).CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	assert.Equal(t, "open", probe(open))
	assert.Equal(t, "refused", probe(closedPort))
}

// TestPathPrelude: the scripts find the server binaries on PATH (official
// image), under PG_BINDIR (Options.PGBinDir), or under the newest
// /usr/lib/postgresql/*/bin (Debian's packages, as in the e2e image).
func TestPathPrelude(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	which := func(env ...string) string {
		c := exec.Command(bash, "-c", pathPrelude+"command -v pg_ctl || echo none")
		c.Env = env
		out, err := c.CombinedOutput()
		require.NoError(t, err, string(out))
		return strings.TrimSpace(string(out))
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(dir+"/pg_ctl", []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.WriteFile(dir+"/postgres", []byte("#!/bin/sh\n"), 0o755))
	assert.Equal(t, dir+"/pg_ctl", which("PATH="+dir+":/usr/bin:/bin"), "postgres on PATH: PATH as it is")
	assert.Equal(t, dir+"/pg_ctl", which("PATH=/usr/bin:/bin", "PG_BINDIR="+dir), "PG_BINDIR first")
	debian, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(debian) == 0 {
		t.Skip("no /usr/lib/postgresql/*/bin/pg_ctl on this machine for the Debian layout")
	}
	got := which("PATH=/usr/bin:/bin")
	assert.True(t, strings.HasPrefix(got, "/usr/lib/postgresql/") && strings.HasSuffix(got, "/bin/pg_ctl"), got)
}
