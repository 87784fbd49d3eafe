package k8s

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strongcheck/strongcheck/cluster"
)

func TestFaultCommands(t *testing.T) {
	ip1, ip2, ip3 := podIP(0), podIP(1), podIP(2)
	tests := []struct {
		name   string
		op     func(ctx context.Context, c *Cluster) error
		want   []call
		status map[string]cluster.Role
	}{
		{
			name:   "kill is SIGKILL in the postgres container, not a pod delete",
			op:     func(ctx context.Context, c *Cluster) error { return c.Kill(ctx, "n1") },
			want:   []call{{Pod: "pg-n1", Container: "postgres", Cmd: killCmd()}},
			status: map[string]cluster.Role{"n1": cluster.Down, "n2": cluster.Unknown},
		},
		{
			name:   "pause",
			op:     func(ctx context.Context, c *Cluster) error { return c.Pause(ctx, "n2") },
			want:   []call{{Pod: "pg-n2", Container: "postgres", Cmd: pauseCmd()}},
			status: map[string]cluster.Role{"n2": cluster.Paused},
		},
		{
			name: "pause then resume",
			op: func(ctx context.Context, c *Cluster) error {
				return errors.Join(c.Pause(ctx, "n2"), c.Resume(ctx, "n2"))
			},
			want: []call{
				{Pod: "pg-n2", Container: "postgres", Cmd: pauseCmd()},
				{Pod: "pg-n2", Container: "postgres", Cmd: resumeCmd()},
			},
			status: map[string]cluster.Role{"n2": cluster.Unknown},
		},
		{
			name: "stop then start",
			op: func(ctx context.Context, c *Cluster) error {
				return errors.Join(c.Stop(ctx, "n3"), c.Start(ctx, "n3"))
			},
			want: []call{
				{Pod: "pg-n3", Container: "postgres", Cmd: stopCmd()},
				{Pod: "pg-n3", Container: "postgres", Cmd: startCmd(2)},
			},
			status: map[string]cluster.Role{"n3": cluster.Unknown},
		},
		{
			name: "partition isolates n1 both ways, heals n3",
			op: func(ctx context.Context, c *Cluster) error {
				return c.Partition(ctx, cluster.Grudge{"n1": {"n2", "n3"}})
			},
			want: []call{
				{Pod: "pg-n1", Container: "faults", Cmd: []string{"nft", "-f", "-"}, Stdin: nftRuleset([]string{ip2, ip3})},
				{Pod: "pg-n2", Container: "faults", Cmd: []string{"nft", "-f", "-"}, Stdin: nftRuleset([]string{ip1})},
				{Pod: "pg-n3", Container: "faults", Cmd: []string{"nft", "-f", "-"}, Stdin: nftRuleset([]string{ip1})},
			},
		},
		{
			name: "partition of one pair leaves the third pod without a table",
			op: func(ctx context.Context, c *Cluster) error {
				return c.Partition(ctx, cluster.Grudge{"n3": {"n2"}})
			},
			want: []call{
				{Pod: "pg-n1", Container: "faults", Cmd: healCmd()},
				{Pod: "pg-n2", Container: "faults", Cmd: []string{"nft", "-f", "-"}, Stdin: nftRuleset([]string{ip3})},
				{Pod: "pg-n3", Container: "faults", Cmd: []string{"nft", "-f", "-"}, Stdin: nftRuleset([]string{ip2})},
			},
		},
		{
			name: "heal deletes the table everywhere",
			op:   func(ctx context.Context, c *Cluster) error { return c.Heal(ctx) },
			want: []call{
				{Pod: "pg-n1", Container: "faults", Cmd: healCmd()},
				{Pod: "pg-n2", Container: "faults", Cmd: healCmd()},
				{Pod: "pg-n3", Container: "faults", Cmd: healCmd()},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := &fakeExec{}
			c := upFake(t, testOptions(newFake(nil), ex))
			require.NoError(t, tt.op(context.Background(), c))
			got := ex.take()
			if strings.HasPrefix(tt.name, "partition") || strings.HasPrefix(tt.name, "heal") {
				got = byPod(got)
			}
			assert.Equal(t, tt.want, got)
			for n, r := range tt.status {
				assert.Equal(t, r, c.Status(n), n)
			}
		})
	}
}

func TestNftRuleset(t *testing.T) {
	want := `add table inet strongcheck
delete table inet strongcheck
table inet strongcheck {
	chain input {
		type filter hook input priority 0; policy accept;
		ip saddr { 10.0.0.2, 10.0.0.3 } drop
		ip6 saddr { fd00::2 } drop
	}
	chain output {
		type filter hook output priority 0; policy accept;
		ip daddr { 10.0.0.2, 10.0.0.3 } drop
		ip6 daddr { fd00::2 } drop
	}
}
`
	assert.Equal(t, want, nftRuleset([]string{"10.0.0.3", "fd00::2", "10.0.0.2"}))
}

// The backend's part of a failover (cluster.Failover and RejoinOld do the
// SQL around it): the primary n1 crashes, n2 is promoted, n3 follows n2,
// and n1 rejoins as n2's standby with pg_rewind.
func TestFailoverSequence(t *testing.T) {
	ctx := context.Background()
	ex := &fakeExec{}
	cs := newFake(nil)
	c := upFake(t, testOptions(cs, ex))
	ip2 := podIP(1)

	require.NoError(t, c.Kill(ctx, "n1"))
	assert.Equal(t, cluster.Down, c.Status("n1"))
	require.NoError(t, c.Follow(ctx, "n3", "n2"))
	require.NoError(t, c.Rejoin(ctx, "n1", "n2"))
	assert.Equal(t, cluster.Unknown, c.Status("n1"))

	n3conn := "host=" + ip2 + " port=5432 user=replicator application_name=n3 passfile=" + passFile
	n1conn := "host=" + ip2 + " port=5432 user=replicator application_name=n1 passfile=" + passFile
	assert.Equal(t, []call{
		{Pod: "pg-n1", Container: "postgres", Cmd: killCmd()},
		{Pod: "pg-n3", Container: "postgres", Cmd: followCmd(n3conn)},
		{Pod: "pg-n1", Container: "postgres", Cmd: stopCmd()},
		{Pod: "pg-n1", Container: "postgres", Cmd: rewindCmd(ip2)},
		{Pod: "pg-n1", Container: "postgres", Cmd: standbyCmd(n1conn)},
		{Pod: "pg-n1", Container: "postgres", Cmd: startCmd(2)},
	}, ex.take())

	// The primary Service follows n2 now.
	for node, role := range map[string]string{"n1": "standby", "n2": "primary", "n3": "standby"} {
		p, err := cs.CoreV1().Pods(DefaultNamespace).Get(ctx, podName(node), metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, role, p.Labels[LabelRole], node)
	}
}

// PauseBackends sends the PIDs to the postgres container and returns the
// ones its script says it signalled; no PIDs, no exec.
func TestPauseBackendsCommand(t *testing.T) {
	ex := &fakeExec{reply: func(c call) (string, string, error) { return "41\n", "", nil }}
	c := upFake(t, testOptions(newFake(nil), ex))
	got, err := c.PauseBackends(context.Background(), "n1", []int{41, 42})
	require.NoError(t, err)
	assert.Equal(t, []int{41}, got)
	require.NoError(t, c.ResumeBackends(context.Background(), "n1", []int{41}))
	assert.Equal(t, []call{
		{Pod: "pg-n1", Container: "postgres", Cmd: signalBackendsCmd("STOP", []int{41, 42})},
		{Pod: "pg-n1", Container: "postgres", Cmd: signalBackendsCmd("CONT", []int{41})},
	}, ex.take())
	got, err = c.PauseBackends(context.Background(), "n1", nil)
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Empty(t, ex.take(), "nothing to signal: no exec")
	ex.reply = func(call) (string, string, error) { return "not a pid\n", "", nil }
	_, err = c.PauseBackends(context.Background(), "n1", []int{41})
	assert.ErrorIs(t, err, ErrKubernetes)
}

func TestFaultErrorsNameThePodAndStatus(t *testing.T) {
	ex := &fakeExec{reply: func(c call) (string, string, error) {
		return "", "postgres is not running\n", exitErr(3)
	}}
	c := upFake(t, testOptions(newFake(nil), ex))
	err := c.Pause(context.Background(), "n2")
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrKubernetes)
	assert.Equal(t, 3, ExitCode(err))
	assert.Contains(t, err.Error(), "pause n2 in pod strongcheck/pg-n2 container postgres: exit status 3: postgres is not running")
	assert.Equal(t, cluster.Unknown, c.Status("n2"), "a failed pause leaves the status alone")

	err = c.Kill(context.Background(), "n9")
	assert.ErrorIs(t, err, cluster.ErrSpec)
}

// The scripts must at least parse; the process-control ones are run for
// real in TestSupervisorScripts.
func TestScriptsParse(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	scripts := map[string]string{
		"supervisor": supervisorScript, "init": initScript, "kill": killScript, "pause": pauseScript,
		"resume": resumeScript, "stop": stopScript, "start": startScript, "rewind": rewindScript,
		"standby": standbyScript, "follow": followScript, "heal": healScript, "sidecar": sidecarScript,
		"signal-backends": signalBackendsScript,
	}
	for name, s := range scripts {
		out, err := exec.Command(bash, "-n", "-c", s).CombinedOutput()
		assert.NoError(t, err, "%s: %s", name, out)
	}
}

// standbyScript rewrites postgresql.auto.conf as pg_rewind left it.
func TestStandbyScriptRewritesAutoConf(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash on this machine")
	}
	dir := t.TempDir()
	auto := filepath.Join(dir, "postgresql.auto.conf")
	require.NoError(t, os.WriteFile(auto, []byte("# Do not edit this file manually!\nwal_level = 'replica'\nsynchronous_standby_names = 'ANY 1 (n3)'\nprimary_conninfo = 'host=old'\n"), 0o600))
	script := strings.Replace(standbyScript, "export PGDATA="+pgData, "export PGDATA="+dir, 1)
	out, err := exec.Command(bash, "-c", script, "x", "host=10.0.0.2 application_name=n1").CombinedOutput()
	require.NoError(t, err, string(out))
	got, err := os.ReadFile(auto)
	require.NoError(t, err)
	assert.Equal(t, "# Do not edit this file manually!\nwal_level = 'replica'\nprimary_conninfo = 'host=10.0.0.2 application_name=n1'\n", string(got))
	assert.FileExists(t, filepath.Join(dir, "standby.signal"))
}
