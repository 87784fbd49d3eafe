package k8s

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func labelled(run string) map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelRun: run}
}

// crashedRun is what a run killed with SIGKILL leaves behind in namespace
// ns, plus objects strongcheck must never touch.
func crashedRun(ns string) []runtime.Object {
	m := func(name string, l map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: l}
	}
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labelled("old")}},
		&corev1.Pod{ObjectMeta: m("pg-n1", labelled("old"))},
		&corev1.Pod{ObjectMeta: m("pg-n2", labelled("old"))},
		&corev1.Service{ObjectMeta: m("pg", labelled("old"))},
		&corev1.Secret{ObjectMeta: m("strongcheck-passwords", labelled("old"))},
		&corev1.PersistentVolumeClaim{ObjectMeta: m("data-n1", labelled("old"))},
		&corev1.Pod{ObjectMeta: m("someone-elses", map[string]string{"app": "x"})},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "default"}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}},
	}
}

func TestUpSweepsAnEarlierCrashedRunAndCloseRemovesItsOwn(t *testing.T) {
	ctx := context.Background()
	cs := newFake(nil, crashedRun(DefaultNamespace)...)
	c := upFake(t, testOptions(cs, &fakeExec{}))
	assert.Equal(t, []string{
		"pod/strongcheck/pg-n1", "pod/strongcheck/pg-n2", "service/strongcheck/pg",
		"secret/strongcheck/strongcheck-passwords", "persistentvolumeclaim/strongcheck/data-n1",
	}, c.Swept())

	pods, err := cs.CoreV1().Pods(DefaultNamespace).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	runs := map[string]string{}
	for _, p := range pods.Items {
		runs[p.Name] = p.Labels[LabelRun]
	}
	assert.Equal(t, map[string]string{"pg-n1": "run1", "pg-n2": "run1", "pg-n3": "run1", "someone-elses": ""}, runs)
	_, err = cs.CoreV1().PersistentVolumeClaims(DefaultNamespace).Get(ctx, "data-n1", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))

	require.NoError(t, c.Close(ctx))
	require.NoError(t, c.Close(ctx), "Close is idempotent")
	pods, err = cs.CoreV1().Pods(DefaultNamespace).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	assert.Equal(t, "someone-elses", pods.Items[0].Name)
	_, err = cs.CoreV1().Namespaces().Get(ctx, DefaultNamespace, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the namespace a strongcheck run created goes too")
	_, err = cs.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
	assert.NoError(t, err)
}

func TestCloseKeepsANamespaceItDidNotCreate(t *testing.T) {
	ctx := context.Background()
	cs := newFake(nil, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-db"}})
	o := testOptions(cs, &fakeExec{})
	o.Namespace = "team-db"
	c := upFake(t, o)
	require.NoError(t, c.Close(ctx))
	_, err := cs.CoreV1().Namespaces().Get(ctx, "team-db", metav1.GetOptions{})
	assert.NoError(t, err)
	pods, err := cs.CoreV1().Pods("team-db").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, pods.Items)
}

func TestCleanupByLabel(t *testing.T) {
	tests := []struct {
		name, namespace, run string
		want                 []string
	}{
		{
			name: "every run everywhere",
			want: []string{
				"namespace/strongcheck", "namespace/x",
				"persistentvolumeclaim/strongcheck/data-n1", "pod/strongcheck/pg-n1", "pod/strongcheck/pg-n2", "pod/x/pg-n1", "pod/x/pg-n2",
				"persistentvolumeclaim/x/data-n1", "secret/strongcheck/strongcheck-passwords", "secret/x/strongcheck-passwords",
				"service/strongcheck/pg", "service/x/pg",
			},
		},
		{
			name: "one namespace", namespace: "x",
			want: []string{"namespace/x", "persistentvolumeclaim/x/data-n1", "pod/x/pg-n1", "pod/x/pg-n2", "secret/x/strongcheck-passwords", "service/x/pg"},
		},
		{
			name: "another run", namespace: "x", run: "other",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := append(crashedRun(DefaultNamespace), crashedRun("x")[:6]...)
			cs := newFake(nil, objs...)
			got, err := Cleanup(context.Background(), cs, tt.namespace, tt.run)
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.want, got)
			for _, ns := range []string{DefaultNamespace, "default"} {
				left, err := cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
				require.NoError(t, err)
				for _, p := range left.Items {
					if p.Labels[LabelManagedBy] == ManagedByValue && tt.namespace == "" {
						t.Errorf("pod %s/%s left", ns, p.Name)
					}
				}
			}
			_, err = cs.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
			assert.NoError(t, err, "unlabelled objects are never touched")
			_, err = cs.CoreV1().Pods(DefaultNamespace).Get(context.Background(), "someone-elses", metav1.GetOptions{})
			assert.NoError(t, err, "unlabelled objects are never touched")
		})
	}
}
