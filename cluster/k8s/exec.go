package k8s

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// Executor runs a command in a container of a pod of the run's namespace
// and returns its output. A command that ran and exited non-zero returns an
// error for which ExitCode reports the status; any other error (no such
// pod, connection lost, forbidden) reports -1.
type Executor interface {
	Exec(ctx context.Context, pod, container string, cmd []string, stdin io.Reader) (stdout, stderr string, err error)
}

// ExitCode is the exit status of a command that ran and failed, -1 when err
// is not such an error (and 0 when err is nil).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee utilexec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus()
	}
	return -1
}

// RemoteExecutor runs commands through the API server's pods/exec
// subresource: WebSocket first (Kubernetes 1.29+), SPDY when the server or
// a proxy refuses the WebSocket upgrade.
type RemoteExecutor struct {
	Client    kubernetes.Interface
	Config    *rest.Config
	Namespace string
}

// Exec implements Executor.
func (r RemoteExecutor) Exec(ctx context.Context, pod, container string, cmd []string, stdin io.Reader) (string, string, error) {
	req := r.Client.CoreV1().RESTClient().Post().
		Resource("pods").Namespace(r.Namespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: container,
			Command:   cmd,
			Stdin:     stdin != nil,
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(r.Config, "GET", req.URL().String())
	if err != nil {
		return "", "", fmt.Errorf("%w: exec in pod %s/%s: websocket executor: %w", ErrKubernetes, r.Namespace, pod, err)
	}
	spdy, err := remotecommand.NewSPDYExecutor(r.Config, "POST", req.URL())
	if err != nil {
		return "", "", fmt.Errorf("%w: exec in pod %s/%s: spdy executor: %w", ErrKubernetes, r.Namespace, pod, err)
	}
	ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return "", "", fmt.Errorf("%w: exec in pod %s/%s: %w", ErrKubernetes, r.Namespace, pod, err)
	}
	var out, errOut bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), err
}

// execError describes a failed exec: which operation, in which container of
// which pod, the exit status and the tail of its stderr.
func execError(op, namespace, pod, container string, stderr string, err error) error {
	detail := strings.TrimSpace(stderr)
	if len(detail) > 2000 {
		detail = "..." + detail[len(detail)-2000:]
	}
	if detail != "" {
		detail = ": " + detail
	}
	if code := ExitCode(err); code >= 0 {
		return fmt.Errorf("%w: %s in pod %s/%s container %s: exit status %d%s: %w", ErrKubernetes, op, namespace, pod, container, code, detail, err)
	}
	return fmt.Errorf("%w: %s in pod %s/%s container %s: %s%s: %w", ErrKubernetes, op, namespace, pod, container, reason("create", "pods/exec", err), detail, err)
}
