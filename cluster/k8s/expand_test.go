package k8s

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// kubeExpand is what the kubelet does to a container's command and
// arguments and to an exec probe's command, as Kubernetes documents it:
// "$$" is a literal "$", "$(NAME)" becomes the value of the container's
// variable NAME when it has one, and any other text stays as it is.
func kubeExpand(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			j := strings.IndexByte(s[i+2:], ')')
			if j < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			if v, ok := env[s[i+2:i+2+j]]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+j])
			}
			i += 2 + j
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func TestKubeExpand(t *testing.T) {
	env := map[string]string{"PGDATA": "/d"}
	for in, want := range map[string]string{
		"echo $$ > f":         "echo $ > f",
		"$(PGDATA)/x":         "/d/x",
		"$(cat f) $(NOPE) $x": "$(cat f) $(NOPE) $x",
		"$$(PGDATA) $":        "$(PGDATA) $",
		"a $( b":              "a $( b",
	} {
		assert.Equal(t, want, kubeExpand(in, env), in)
	}
}

// TestContainersRunTheScriptsVerbatim: what the kubelet runs, after its
// $(VAR) expansion, is exactly the scripts and settings the backend means.
// Without the escaping, the supervisor's "echo $$" wrote "$" as its PID on
// a real cluster and Kill, Pause and Stop found no postmaster.
func TestContainersRunTheScriptsVerbatim(t *testing.T) {
	cs := newFake(nil)
	opts := testOptions(cs, &fakeExec{})
	opts.Spec.Settings = map[string]string{"log_line_prefix": "'$(PGDATA) $$ %m '"}
	upFake(t, opts)
	p, err := cs.CoreV1().Pods(DefaultNamespace).Get(context.Background(), "pg-n2", metav1.GetOptions{})
	require.NoError(t, err)
	vars := func(ctr corev1.Container) map[string]string {
		env := map[string]string{}
		for _, e := range ctr.Env {
			if e.ValueFrom == nil {
				env[e.Name] = kubeExpand(e.Value, env)
			}
		}
		return env
	}
	expand := func(ctr corev1.Container, args []string) []string {
		env := vars(ctr)
		out := make([]string, len(args))
		for i, a := range args {
			out[i] = kubeExpand(a, env)
		}
		return out
	}
	init, pg, side := p.Spec.InitContainers[0], p.Spec.Containers[0], p.Spec.Containers[1]
	b := builder{spec: opts.Spec, opts: opts.withDefaults()}
	assert.Equal(t, []string{"bash", "-c", initScript, "strongcheck-init"}, expand(init, init.Command))
	assert.Equal(t, []string{"bash", "-c", supervisorScript, "strongcheck-supervisor"}, expand(pg, pg.Command))
	assert.Equal(t, b.commandLineSettings("n2"), expand(pg, pg.Args))
	assert.Contains(t, expand(pg, pg.Args), "log_line_prefix=$(PGDATA) $$ %m ")
	assert.Equal(t, readyCmd(), expand(pg, pg.ReadinessProbe.Exec.Command))
	assert.Equal(t, []string{"sh", "-c", sidecarScript}, expand(side, side.Command))
	assert.Equal(t, b.postgresqlConf(), vars(init)["PG_CONF"], "environment values are expanded too")
	assert.Contains(t, b.postgresqlConf(), "\nlog_line_prefix = '$(PGDATA) $$ %m '\n")
	assert.Contains(t, b.postgresqlConf(), "\nwal_keep_size = '512MB'\n", "pg_rewind's single-user recovery keeps the WAL it needs")
	assert.Contains(t, supervisorScript, "echo $$ >", "the case that broke on a real cluster")
}
