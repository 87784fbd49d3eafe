package k8s

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// assertNothingLeft checks that a failed Up removed the run's objects and
// the namespace it created.
func assertNothingLeft(t *testing.T, cs *fake.Clientset) {
	t.Helper()
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: LabelRun + "=run1"}
	var left []string
	pods, err := cs.CoreV1().Pods("").List(ctx, sel)
	require.NoError(t, err)
	for _, o := range pods.Items {
		left = append(left, "pod/"+o.Name)
	}
	svcs, err := cs.CoreV1().Services("").List(ctx, sel)
	require.NoError(t, err)
	for _, o := range svcs.Items {
		left = append(left, "service/"+o.Name)
	}
	secs, err := cs.CoreV1().Secrets("").List(ctx, sel)
	require.NoError(t, err)
	for _, o := range secs.Items {
		left = append(left, "secret/"+o.Name)
	}
	assert.Empty(t, left, "objects left after a failed Up")
	_, err = cs.CoreV1().Namespaces().Get(ctx, DefaultNamespace, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "namespace left: %v", err)
}

func TestUpFailuresNameTheObjectAndCleanUp(t *testing.T) {
	tests := []struct {
		name    string
		status  func(p *corev1.Pod)
		reactor func(cs *fake.Clientset)
		want    []string
		is      func(error) bool
	}{
		{
			name: "RBAC forbids creating pods",
			reactor: func(cs *fake.Clientset) {
				cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "pg-n1",
						errors.New(`User "ci" cannot create resource "pods" in API group "" in the namespace "strongcheck"`))
				})
			},
			want: []string{"create pod strongcheck/pg-n1", "forbidden by RBAC", `"create" on "pods"`, `User "ci" cannot create resource "pods"`},
			is:   apierrors.IsForbidden,
		},
		{
			name: "image cannot be pulled",
			status: func(p *corev1.Pod) {
				p.Status = corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{
					Name: "init", Image: "postgres:nope",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
						Reason: "ImagePullBackOff", Message: `Back-off pulling image "postgres:nope"`,
					}},
				}}}
			},
			want: []string{"pod strongcheck/pg-n1 (node n1) cannot start", `init container "init" (image postgres:nope): ImagePullBackOff: Back-off pulling image "postgres:nope"`},
		},
		{
			name: "init container fails",
			status: func(p *corev1.Pod) {
				p.Status = corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{
					Name:  "init",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}},
				}}}
			},
			want: []string{"pod strongcheck/pg-n1 (node n1) cannot start", `init container "init" exited with status 1 (Error)`, "its log ends:\nfake logs"},
		},
		{
			name: "a standby never becomes ready",
			status: func(p *corev1.Pod) {
				if p.Name == "pg-n1" {
					return
				}
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", Message: "containers with unready status: [postgres]"}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "postgres", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
			},
			want: []string{"pod strongcheck/pg-n2 (node n2) not ready within 1s", "phase Running", "Ready=False (ContainersNotReady", "postgres running, not ready"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newFake(tt.status)
			if tt.reactor != nil {
				tt.reactor(cs)
			}
			o := testOptions(cs, &fakeExec{})
			o.Timeout = time.Second
			t0 := time.Now()
			_, err := Up(context.Background(), o)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrKubernetes)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			if tt.is != nil {
				assert.True(t, tt.is(err), "the API error stays reachable: %v", err)
			}
			assert.Less(t, time.Since(t0), 5*time.Second)
			assertNothingLeft(t, cs)
		})
	}
}

func TestConnectErrors(t *testing.T) {
	dir := t.TempDir()
	unreachable := filepath.Join(dir, "unreachable.yaml")
	require.NoError(t, os.WriteFile(unreachable, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: "x"}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`), 0o600))
	tests := []struct {
		name string
		opts Options
		env  map[string]string
		want []string
	}{
		{
			name: "no kubeconfig anywhere",
			env:  map[string]string{"KUBECONFIG": filepath.Join(dir, "missing"), "HOME": dir, "KUBERNETES_SERVICE_HOST": "", "KUBERNETES_SERVICE_PORT": ""},
			want: []string{"no kubeconfig found", "--kubeconfig"},
		},
		{
			name: "explicit kubeconfig missing",
			opts: Options{Kubeconfig: filepath.Join(dir, "nope.yaml")},
			want: []string{"kubeconfig " + filepath.Join(dir, "nope.yaml")},
		},
		{
			name: "unknown context",
			opts: Options{Kubeconfig: unreachable, Context: "prod"},
			want: []string{"context prod", `"prod"`},
		},
		{
			name: "API server unreachable",
			opts: Options{Kubeconfig: unreachable},
			want: []string{"API server https://127.0.0.1:1", "unreachable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, _, err := Connect(context.Background(), tt.opts)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrKubernetes)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
