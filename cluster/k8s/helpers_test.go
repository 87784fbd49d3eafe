package k8s

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/strongcheck/strongcheck/cluster"
)

// call is one command the fake executor received.
type call struct {
	Pod, Container string
	Cmd            []string
	Stdin          string
}

// fakeExec records every command; reply, when set, decides the result.
type fakeExec struct {
	mu    sync.Mutex
	calls []call
	reply func(c call) (string, string, error)
}

func (f *fakeExec) Exec(_ context.Context, pod, container string, cmd []string, stdin io.Reader) (string, string, error) {
	c := call{Pod: pod, Container: container, Cmd: cmd}
	if stdin != nil {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return "", "", err
		}
		c.Stdin = string(b)
	}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	reply := f.reply
	f.mu.Unlock()
	if reply != nil {
		return reply(c)
	}
	return "", "", nil
}

// take returns the calls so far and forgets them.
func (f *fakeExec) take() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.calls
	f.calls = nil
	return out
}

// byPod sorts calls of concurrent operations.
func byPod(cs []call) []call {
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Pod < cs[j].Pod })
	return cs
}

// exitErr is what a command that exited with code returns (as client-go's
// CodeExitError does).
type exitErr int

func (e exitErr) Error() string   { return fmt.Sprintf("command terminated with exit code %d", int(e)) }
func (e exitErr) String() string  { return e.Error() }
func (e exitErr) Exited() bool    { return true }
func (e exitErr) ExitStatus() int { return int(e) }

// podIP is the IP the fake kubelet gives a pod (pg-n1 -> 10.244.0.11, ...).
func podIP(i int) string { return fmt.Sprintf("10.244.0.%d", 11+i) }

// newFake is a clientset whose pods become running and ready with an IP
// when created, like a kubelet would make them; status, when not nil,
// replaces that status (a pod stuck pulling its image, never ready, ...).
func newFake(status func(p *corev1.Pod), objects ...runtime.Object) *fake.Clientset {
	cs := fake.NewClientset(objects...)
	var mu sync.Mutex
	n := 0
	cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		p := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		mu.Lock()
		p.Status = corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      podIP(n),
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		}
		n++
		mu.Unlock()
		if status != nil {
			status(p)
		}
		return false, nil, nil
	})
	return cs
}

// testOptions reach the fake clientset from inside the cluster, skip the
// SQL wait and fix the run id.
func testOptions(cs *fake.Clientset, ex Executor) Options {
	return Options{
		Client:          cs,
		Executor:        ex,
		Access:          InCluster,
		RunID:           "run1",
		Timeout:         2 * time.Second,
		waitReplication: func(*Cluster) error { return nil },
	}
}

// upFake brings a cluster up on a fake clientset.
func upFake(t *testing.T, opts Options) *Cluster {
	t.Helper()
	c, err := Up(context.Background(), opts)
	require.NoError(t, err)
	return c
}

var _ cluster.Cluster = (*Cluster)(nil)
