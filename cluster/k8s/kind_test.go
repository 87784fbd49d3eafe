package k8s

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTools is a PATH with some tools and a record of what ran.
type fakeTools struct {
	onPath     map[string]bool
	dockerDown bool
	clusters   string
	ran        []string
}

func (f *fakeTools) kind(k Kind) Kind {
	k.lookPath = func(file string) (string, error) {
		if f.onPath[file] {
			return "/usr/bin/" + file, nil
		}
		return "", exec.ErrNotFound
	}
	k.run = func(_ context.Context, stdout, stderr io.Writer, name string, args ...string) error {
		line := strings.Join(append([]string{name}, args...), " ")
		f.ran = append(f.ran, line)
		switch {
		case name == "docker" && f.dockerDown:
			io.WriteString(stderr, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n")
			return errors.New("exit status 1")
		case line == "kind get clusters":
			io.WriteString(stdout, f.clusters)
		}
		return nil
	}
	return k
}

func TestKind(t *testing.T) {
	tests := []struct {
		name    string
		tools   fakeTools
		k       Kind
		down    bool
		created bool
		err     []string
		ran     []string
	}{
		{
			name:  "nothing installed",
			tools: fakeTools{},
			err:   []string{"docker is not on PATH", "kind is not on PATH"},
		},
		{
			name:  "docker without an engine",
			tools: fakeTools{onPath: map[string]bool{"docker": true, "kind": true}, dockerDown: true},
			err:   []string{"no engine answers `docker info` (Cannot connect to the Docker daemon"},
			ran:   []string{"docker info --format {{.ServerVersion}}"},
		},
		{
			name:  "docker but no kind",
			tools: fakeTools{onPath: map[string]bool{"docker": true}},
			err:   []string{"kind is not on PATH"},
			ran:   []string{"docker info --format {{.ServerVersion}}"},
		},
		{
			name:    "creates the cluster",
			tools:   fakeTools{onPath: map[string]bool{"docker": true, "kind": true}, clusters: "dev\n"},
			k:       Kind{NodeImage: "kindest/node:v1.33.1", Kubeconfig: "/tmp/kc"},
			created: true,
			ran: []string{
				"docker info --format {{.ServerVersion}}", "kind get clusters",
				"kind create cluster --name strongcheck --wait 180s --image kindest/node:v1.33.1 --kubeconfig /tmp/kc",
			},
		},
		{
			name:  "keeps an existing cluster",
			tools: fakeTools{onPath: map[string]bool{"docker": true, "kind": true}, clusters: "dev\nstrongcheck\n"},
			ran:   []string{"docker info --format {{.ServerVersion}}", "kind get clusters"},
		},
		{
			name:  "down",
			tools: fakeTools{onPath: map[string]bool{"docker": true, "kind": true}},
			k:     Kind{Name: "ci"},
			down:  true,
			ran:   []string{"docker info --format {{.ServerVersion}}", "kind delete cluster --name ci"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.tools.kind(tt.k)
			var err error
			var created bool
			if tt.down {
				err = k.Down(context.Background())
			} else {
				created, err = k.Up(context.Background())
			}
			if len(tt.err) > 0 {
				require.ErrorIs(t, err, ErrMissingTool)
				for _, w := range tt.err {
					assert.Contains(t, err.Error(), w)
				}
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.created, created)
			assert.Equal(t, tt.ran, tt.tools.ran)
		})
	}
}
