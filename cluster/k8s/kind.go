package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// ErrMissingTool is wrapped when kind up/down cannot run on this machine:
// the message says plainly what is missing (no docker, no working engine,
// no kind). The CLI maps it to exit 255.
var ErrMissingTool = errors.New("missing tool")

// DefaultKindCluster is the kind cluster name `strongcheck kind up` uses.
const DefaultKindCluster = "strongcheck"

// Kind creates and deletes a kind cluster for the harness by running the
// kind binary (the sigs.k8s.io/kind library is not a dependency of this
// module). The zero value uses the cluster name "strongcheck", kind's
// default node image and kubeconfig, and discards the tools' output.
type Kind struct {
	// Name is the kind cluster's name (DefaultKindCluster when empty).
	Name string
	// NodeImage is kind's --image (e.g. kindest/node:v1.33.1); empty for
	// kind's default.
	NodeImage string
	// Kubeconfig is where kind writes the cluster's credentials; empty
	// for kind's default ($KUBECONFIG or ~/.kube/config).
	Kubeconfig string
	// Stdout and Stderr receive kind's output (nil discards it).
	Stdout, Stderr io.Writer

	// lookPath and run replace exec.LookPath and running a command (tests).
	lookPath func(file string) (string, error)
	run      func(ctx context.Context, stdout, stderr io.Writer, name string, args ...string) error
}

func (k Kind) name() string {
	if k.Name == "" {
		return DefaultKindCluster
	}
	return k.Name
}

func (k Kind) look(file string) (string, error) {
	if k.lookPath != nil {
		return k.lookPath(file)
	}
	return exec.LookPath(file)
}

func (k Kind) exec(ctx context.Context, stdout, stderr io.Writer, name string, args ...string) error {
	if k.run != nil {
		return k.run(ctx, stdout, stderr, name, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// Check says what is missing to run kind here: the docker CLI, a Docker
// engine that answers `docker info`, the kind binary. All are checked and
// named in one error wrapping ErrMissingTool; nil means kind can run.
func (k Kind) Check(ctx context.Context) error {
	var missing []string
	if _, err := k.look("docker"); err != nil {
		missing = append(missing, "docker is not on PATH (install Docker, or Podman with the docker CLI shim)")
	} else {
		var errOut bytes.Buffer
		if err := k.exec(ctx, io.Discard, &errOut, "docker", "info", "--format", "{{.ServerVersion}}"); err != nil {
			msg := firstLine(errOut.String())
			if msg == "" {
				msg = err.Error()
			}
			missing = append(missing, "docker is installed but no engine answers `docker info` ("+msg+"): start the Docker daemon or check your permissions on its socket")
		}
	}
	if _, err := k.look("kind"); err != nil {
		missing = append(missing, "kind is not on PATH (install it: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: cannot run kind here: %s", ErrMissingTool, strings.Join(missing, "; "))
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// exists reports whether kind already has the cluster.
func (k Kind) exists(ctx context.Context) (bool, error) {
	var out, errOut bytes.Buffer
	if err := k.exec(ctx, &out, &errOut, "kind", "get", "clusters"); err != nil {
		return false, fmt.Errorf("%w: kind get clusters: %w: %s", ErrKubernetes, err, strings.TrimSpace(errOut.String()))
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.TrimSpace(l) == k.name() {
			return true, nil
		}
	}
	return false, nil
}

// Up creates the kind cluster, or does nothing when it exists. It returns
// true when it created one.
func (k Kind) Up(ctx context.Context) (bool, error) {
	if err := k.Check(ctx); err != nil {
		return false, err
	}
	ok, err := k.exists(ctx)
	if err != nil || ok {
		return false, err
	}
	args := []string{"create", "cluster", "--name", k.name(), "--wait", "180s"}
	if k.NodeImage != "" {
		args = append(args, "--image", k.NodeImage)
	}
	if k.Kubeconfig != "" {
		args = append(args, "--kubeconfig", k.Kubeconfig)
	}
	var errOut bytes.Buffer
	if err := k.exec(ctx, orDiscard(k.Stdout), io.MultiWriter(orDiscard(k.Stderr), &errOut), "kind", args...); err != nil {
		return false, fmt.Errorf("%w: kind %s: %w: %s", ErrKubernetes, strings.Join(args, " "), err, lastLines(errOut.String(), 5))
	}
	return true, nil
}

// Down deletes the kind cluster (kind succeeds when there is none).
func (k Kind) Down(ctx context.Context) error {
	if err := k.Check(ctx); err != nil {
		return err
	}
	args := []string{"delete", "cluster", "--name", k.name()}
	if k.Kubeconfig != "" {
		args = append(args, "--kubeconfig", k.Kubeconfig)
	}
	var errOut bytes.Buffer
	if err := k.exec(ctx, orDiscard(k.Stdout), io.MultiWriter(orDiscard(k.Stderr), &errOut), "kind", args...); err != nil {
		return fmt.Errorf("%w: kind %s: %w: %s", ErrKubernetes, strings.Join(args, " "), err, lastLines(errOut.String(), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
