package existing

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseNode(t *testing.T) {
	for _, tc := range []struct {
		in                         string
		name, host, user, app, adm string
		port                       uint16
		err                        string
	}{
		{in: "n1=postgres://app@db1.example:5433/shop", name: "n1", host: "db1.example", port: 5433, user: "app"},
		{in: "n2=host=10.0.0.2 port=5432 user=app dbname=shop,app=replica1", name: "n2", host: "10.0.0.2", port: 5432, user: "app", app: "replica1"},
		{in: "n3=postgres://app@h3/db,admin=postgres://postgres@h3/db", name: "n3", host: "h3", port: 5432, user: "app", adm: "postgres://postgres@h3/db"},
		{in: "n1=postgres://app:secret@h/db", err: "must not hold a password"},
		{in: "n1=postgres://app@h/db?password=secret", err: "must not hold a password"},
		{in: "n1=host=h user=app password=secret", err: "must not hold a password"},
		{in: "n1=host=h user=app  password = secret", err: "must not hold a password"},
		{in: "n1=postgres://app@h/db,admin=postgres://root:pw@h/db", err: "must not hold a password"},
		{in: "N1=postgres://app@h/db", err: "1-8 lower-case"},
		{in: "n1", err: "want NAME=DSN"},
		{in: "n1=postgres://app@h/db,color=red", err: "unknown option"},
		{in: "n1=postgres://app@h1,h2/db", err: "one host per node"},
		{in: "n1=host=h1 port=5432 sslmode=disable", name: "n1", host: "h1", port: 5432, user: userName()},
		{in: "n1=host='a;rm -rf' user=app", err: "goes into shell commands"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := ParseNode(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.ErrorIs(t, err, ErrUsage)
				assert.NotContains(t, err.Error(), "secret", "the error quotes no password")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.name, n.Name)
			assert.Equal(t, tc.host, n.Host)
			assert.Equal(t, tc.port, n.Port)
			assert.Equal(t, tc.user, n.User)
			assert.Equal(t, tc.app, n.App)
			assert.Equal(t, tc.adm, n.AdminDSN)
		})
	}
	_, err := ParseNode("n1=postgres://app:pw@h/db")
	assert.ErrorIs(t, err, ErrPassword)
}

func TestCheckNodes(t *testing.T) {
	mk := func(specs ...string) []Node {
		var out []Node
		for _, s := range specs {
			n, err := ParseNode(s)
			require.NoError(t, err)
			out = append(out, n)
		}
		return out
	}
	require.NoError(t, CheckNodes(mk("n1=host=a", "n2=host=b", "n3=host=c")))
	assert.ErrorContains(t, CheckNodes(mk("n1=host=a")), "at least two nodes")
	assert.ErrorContains(t, CheckNodes(mk("n1=host=a", "n1=host=b")), "share the name n1")
	assert.ErrorContains(t, CheckNodes(mk("n1=host=a", "n2=host=a")), "share the address a:5432")
	assert.ErrorContains(t, CheckNodes(mk("n1=host=a,app=x", "n2=host=b,app=x")), "share the app x")
}

func TestParseNodesFile(t *testing.T) {
	p := t.TempDir() + "/nodes"
	require.NoError(t, writeFile(p, "# my cluster\nn1=postgres://app@a/db\n\nn2=host=b user=app,app=r1\n"))
	ns, err := ParseNodesFile(p)
	require.NoError(t, err)
	require.Len(t, ns, 2)
	assert.Equal(t, "r1", ns[1].AppName())
	assert.Equal(t, "n1", ns[0].AppName())
	require.NoError(t, writeFile(p, "n1=postgres://app@a/db\nn2=host=b password=x\n"))
	_, err = ParseNodesFile(p)
	assert.ErrorContains(t, err, ":2: ")
	assert.ErrorIs(t, err, ErrPassword)
}

func TestWithParams(t *testing.T) {
	assert.Equal(t, "postgres://app@h/db?application_name=strongcheck&search_path=strongcheck_x",
		withParams("postgres://app@h/db", [][2]string{{"search_path", "strongcheck_x"}, {"application_name", "strongcheck"}}))
	assert.Equal(t, `host=h user=app password='it\'s'`, withParams("host=h user=app", [][2]string{{"password", "it's"}}))
}

func TestConnStringTakesThePasswordFromTheNodesVariable(t *testing.T) {
	n, err := ParseNode("n1=host=h user=app dbname=db")
	require.NoError(t, err)
	c := &Cluster{nodes: []Node{n}, opts: Options{Schema: "strongcheck_r"}}
	t.Setenv("STRONGCHECK_PASSWORD_N1", "pw-n1")
	dsn := c.ConnString("n1", false)
	assert.Contains(t, dsn, "password='pw-n1'")
	assert.Contains(t, dsn, "search_path='strongcheck_r'")
	assert.Contains(t, c.ConnString("n1", true), "password='pw-n1'", "no admin DSN: the admin is the node's own role")
}

func TestFaultCommands(t *testing.T) {
	cmds := Commands{}
	require.NoError(t, ParseFaultCmd(cmds, "kill=ssh {host} sudo pkill -KILL -f 'postgres -D' # {node}"))
	require.NoError(t, ParseFaultCmd(cmds, "partition=ssh {host} block {peer_hosts} # {peers}"))
	require.NoError(t, ParseFaultCmd(cmds, "rejoin=ssh {host} rewind --source {primary_host}:{primary_port}"))
	assert.ErrorContains(t, ParseFaultCmd(cmds, "kill=other"), "given twice")
	assert.ErrorContains(t, ParseFaultCmd(cmds, "explode=boom"), "unknown verb")
	assert.ErrorContains(t, ParseFaultCmd(cmds, "start="), "want VERB=COMMAND")
	assert.ErrorContains(t, ParseFaultCmd(cmds, "start=ssh {hots} start"), "unknown placeholder {hots}")
	assert.Equal(t, []string{"start", "heal"}, cmds.Missing("kill", "start", "partition", "heal", "start"))

	out, err := cmds.Expand("kill", map[string]string{"node": "n1", "host": "db1", "port": "5432"})
	require.NoError(t, err)
	assert.Equal(t, "ssh db1 sudo pkill -KILL -f 'postgres -D' # n1", out)
	_, err = cmds.Expand("partition", map[string]string{"node": "n1", "host": "db1"})
	assert.ErrorContains(t, err, "uses {peer_hosts} {peers}, which partition does not have")
	_, err = cmds.Expand("heal", nil)
	assert.ErrorContains(t, err, "no --fault-cmd heal")
}

func TestClusterCommandFillsPeersAndPrimary(t *testing.T) {
	var nodes []Node
	for _, s := range []string{"n1=postgres://app@10.0.0.1:5432/db", "n2=postgres://app@10.0.0.2:5433/db", "n3=postgres://app@10.0.0.3/db"} {
		n, err := ParseNode(s)
		require.NoError(t, err)
		nodes = append(nodes, n)
	}
	cmds := Commands{}
	require.NoError(t, ParseFaultCmd(cmds, "partition=cut {node} {host}:{port} from {peers} at {peer_hosts}"))
	require.NoError(t, ParseFaultCmd(cmds, "rejoin=rewind {node} from {primary} {primary_host}:{primary_port}"))
	c := &Cluster{nodes: nodes, opts: Options{Commands: cmds}}
	got, err := c.Command(VerbPartition, "n2", []string{"n1", "n3"}, "")
	require.NoError(t, err)
	assert.Equal(t, "cut n2 10.0.0.2:5433 from n1 n3 at 10.0.0.1 10.0.0.3", got)
	got, err = c.Command(VerbRejoin, "n1", nil, "n2")
	require.NoError(t, err)
	assert.Equal(t, "rewind n1 from n2 10.0.0.2:5433", got)
	_, err = c.Command(VerbRejoin, "n9", nil, "n2")
	assert.ErrorContains(t, err, `no node "n9"`)
}

func TestRunCommand(t *testing.T) {
	ctx := context.Background()
	out, err := RunCommand(ctx, "echo hello", 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", out)

	_, err = RunCommand(ctx, "for i in 1 2 3 4 5 6 7; do echo line$i; done; exit 3", 5*time.Second)
	require.ErrorIs(t, err, ErrCommand)
	assert.Contains(t, err.Error(), "exit status 3")
	assert.Contains(t, err.Error(), "line3\nline4\nline5\nline6\nline7")
	assert.NotContains(t, err.Error(), "line2", "only the last lines")

	start := time.Now()
	pidFile := t.TempDir() + "/pid"
	_, err = RunCommand(ctx, "sleep 30 & echo $! > "+pidFile+"; echo waiting; wait", 300*time.Millisecond)
	require.ErrorIs(t, err, ErrCommand)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, err.Error(), "timed out after 300ms; its process group was killed")
	assert.Contains(t, err.Error(), "waiting")
	pid := strings.TrimSpace(readFile(t, pidFile))
	// The background sleep, of the same group, was killed with the shell.
	deadline := time.Now().Add(2 * time.Second)
	for processExists(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.False(t, processExists(pid), "sleep %s survived the timeout", pid)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = RunCommand(cctx, "sleep 5", 10*time.Second)
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrCommand))
	assert.Contains(t, err.Error(), "interrupted")
}

func TestSetConninfoKeepsTheReplicationCredentials(t *testing.T) {
	got := setConninfo("user=replicator passfile=/var/lib/pg/.pgpass host=10.0.0.1 port=5432 application_name=n2 sslmode=prefer",
		map[string]string{"host": "10.0.0.3", "port": "6432"})
	assert.Equal(t, "user=replicator passfile=/var/lib/pg/.pgpass application_name=n2 sslmode=prefer host=10.0.0.3 port=6432", got)
}

func TestSchemaForIsAnIdentifierOfTheRun(t *testing.T) {
	assert.Equal(t, "strongcheck_20261208t015235_570z", SchemaFor("20261208T015235.570Z"))
	assert.Equal(t, "strongcheck_20261208t015235_570z_2", SchemaFor("20261208T015235.570Z-2"))
}
