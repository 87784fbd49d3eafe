package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/strongcheck/strongcheck/cluster"
)

// TestImageOptions: an image other than the official one (a Debian-built
// PostgreSQL whose postgres uid is not 999, binaries under
// /usr/lib/postgresql/15/bin, images imported into the node) is described
// by options that reach every container.
func TestImageOptions(t *testing.T) {
	ctx := context.Background()
	cs := newFake(nil)
	opts := testOptions(cs, &fakeExec{})
	opts.Image, opts.SidecarImage = "strongcheck.local/postgres:15", "strongcheck.local/faults:1"
	opts.PostgresUID, opts.PGBinDir, opts.PullPolicy = 104, "/usr/lib/postgresql/15/bin", corev1.PullNever
	upFake(t, opts)
	p, err := cs.CoreV1().Pods(DefaultNamespace).Get(ctx, "pg-n2", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int64(104), *p.Spec.SecurityContext.FSGroup)
	for _, ctr := range append(p.Spec.InitContainers, p.Spec.Containers...) {
		assert.Equal(t, corev1.PullNever, ctr.ImagePullPolicy, ctr.Name)
		if ctr.Name == sidecarCtr {
			assert.Equal(t, "strongcheck.local/faults:1", ctr.Image)
			continue
		}
		assert.Equal(t, "strongcheck.local/postgres:15", ctr.Image, ctr.Name)
		assert.Equal(t, int64(104), *ctr.SecurityContext.RunAsUser, ctr.Name)
		assert.Equal(t, int64(104), *ctr.SecurityContext.RunAsGroup, ctr.Name)
		assert.Contains(t, ctr.Env, corev1.EnvVar{Name: "PG_BINDIR", Value: "/usr/lib/postgresql/15/bin"}, ctr.Name)
	}

	for _, bad := range []func(o *Options){
		func(o *Options) { o.PostgresUID = -1 },
		func(o *Options) { o.PullPolicy = "Sometimes" },
		func(o *Options) { o.PGBinDir = "usr/lib/postgresql/15/bin" },
		func(o *Options) { o.PGBinDir = "/a b" },
	} {
		o := testOptions(newFake(nil), &fakeExec{})
		bad(&o)
		_, err := Up(ctx, o)
		assert.ErrorIs(t, err, cluster.ErrSpec)
	}
}

func TestUpCreatesLabelledObjects(t *testing.T) {
	ctx := context.Background()
	cs := newFake(nil)
	c := upFake(t, testOptions(cs, &fakeExec{}))
	core := cs.CoreV1()

	ns, err := core.Namespaces().Get(ctx, DefaultNamespace, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{LabelManagedBy: ManagedByValue, LabelRun: "run1"}, ns.Labels)

	sec, err := core.Secrets(DefaultNamespace).Get(ctx, secretName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "run1", sec.Labels[LabelRun])
	pws := map[string]bool{}
	for _, k := range []string{keySuperuser, keyRepl, keyUser} {
		pw := sec.StringData[k]
		assert.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9]{24}$`), pw, k)
		pws[pw] = true
	}
	assert.Len(t, pws, 3, "three different passwords")

	headless, err := core.Services(DefaultNamespace).Get(ctx, headlessService, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, corev1.ClusterIPNone, headless.Spec.ClusterIP)
	assert.True(t, headless.Spec.PublishNotReadyAddresses)
	assert.Equal(t, map[string]string{LabelName: NameValue, LabelRun: "run1"}, headless.Spec.Selector)
	prim, err := core.Services(DefaultNamespace).Get(ctx, primaryServiceName, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "primary", prim.Spec.Selector[LabelRole])

	eff := cluster.Spec{}.Effective()
	for i, node := range []string{"n1", "n2", "n3"} {
		p, err := core.Pods(DefaultNamespace).Get(ctx, "pg-"+node, metav1.GetOptions{})
		require.NoError(t, err, node)
		role := "standby"
		if i == 0 {
			role = "primary"
		}
		assert.Equal(t, map[string]string{
			LabelManagedBy: ManagedByValue, LabelRun: "run1", LabelName: NameValue,
			LabelNode: node, LabelRole: role,
		}, p.Labels, node)
		assert.Equal(t, node, p.Spec.Hostname)
		assert.Equal(t, headlessService, p.Spec.Subdomain)
		assert.False(t, *p.Spec.ShareProcessNamespace)
		assert.Equal(t, int64(999), *p.Spec.SecurityContext.FSGroup)

		require.Len(t, p.Spec.InitContainers, 1)
		require.Len(t, p.Spec.Containers, 2)
		init, pg, side := p.Spec.InitContainers[0], p.Spec.Containers[0], p.Spec.Containers[1]
		assert.Equal(t, DefaultImage, pg.Image)
		assert.Equal(t, DefaultImage, init.Image)
		assert.Equal(t, DefaultSidecarImage, side.Image)
		for _, ctr := range []corev1.Container{init, pg} {
			sc := ctr.SecurityContext
			assert.Equal(t, int64(999), *sc.RunAsUser, ctr.Name)
			assert.True(t, *sc.RunAsNonRoot, ctr.Name)
			assert.False(t, *sc.AllowPrivilegeEscalation, ctr.Name)
			assert.True(t, *sc.ReadOnlyRootFilesystem, ctr.Name)
			assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, ctr.Name)
			assert.Empty(t, sc.Capabilities.Add, ctr.Name)
		}
		assert.Equal(t, []corev1.Capability{"NET_ADMIN"}, side.SecurityContext.Capabilities.Add)
		assert.Equal(t, []corev1.Capability{"ALL"}, side.SecurityContext.Capabilities.Drop)

		require.NotNil(t, pg.ReadinessProbe)
		assert.Equal(t, literal(readyCmd()...), pg.ReadinessProbe.Exec.Command)
		assert.Nil(t, pg.LivenessProbe, "a liveness probe would undo the nemesis's faults")

		// Every effective setting on the command line, the node's own last.
		args := strings.Join(pg.Args, "\x00")
		for k, v := range eff {
			opt := "-c\x00" + k + "=" + unquote(v)
			if k == "synchronous_standby_names" {
				assert.NotContains(t, args, k+"=", "sync list must stay changeable by ALTER SYSTEM")
				continue
			}
			assert.Contains(t, args, opt, "%s: %s", node, k)
		}
		assert.True(t, strings.HasSuffix(args, strings.Join([]string{
			"-c", "cluster_name=" + node, "-c", "listen_addresses=*", "-c", "port=5432", "-c", "unix_socket_directories=" + sockDir,
		}, "\x00")), args)
		assert.Contains(t, args, "-c\x00log_line_prefix=%m [%p] %a ")

		env := map[string]corev1.EnvVar{}
		for _, e := range init.Env {
			env[e.Name] = e
		}
		assert.Equal(t, role, env["ROLE"].Value)
		assert.Equal(t, node, env["NODE"].Value)
		assert.Equal(t, "ANY 2 (n2, n3)", env["SYNC_NAMES"].Value)
		if i > 0 {
			assert.Equal(t, podIP(0), env["PRIMARY_HOST"].Value, "standbys base-backup from the primary's pod")
		}
		for name, key := range map[string]string{"SU_PASSWORD": keySuperuser, "REPL_PASSWORD": keyRepl, "USER_PASSWORD": keyUser} {
			require.NotNil(t, env[name].ValueFrom, name)
			assert.Equal(t, secretName, env[name].ValueFrom.SecretKeyRef.Name)
			assert.Equal(t, key, env[name].ValueFrom.SecretKeyRef.Key)
		}
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		for pw := range pws {
			assert.NotContains(t, string(raw), pw, "a password in the pod spec")
		}
		assert.Equal(t, corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}, p.Spec.Volumes[0].VolumeSource)
	}

	assert.Equal(t, fmt.Sprintf("host=%s port=5432 user=strongcheck password=%s dbname=postgres sslmode=disable connect_timeout=2", podIP(1), sec.StringData[keyUser]), c.ConnString("n2", false))
	assert.Contains(t, c.ConnString("n1", true), "host="+podIP(0)+" port=5432 user=postgres password="+sec.StringData[keySuperuser]+" ")
	assert.Equal(t, "k8s", c.Backend())
	assert.Equal(t, []string{"n1", "n2", "n3"}, c.Nodes())
}

func TestOptionsShapeThePods(t *testing.T) {
	tests := []struct {
		name  string
		opts  func(o *Options)
		check func(t *testing.T, pods []corev1.Pod, pvcs []corev1.PersistentVolumeClaim)
	}{
		{
			name: "image, storage class, size and resources",
			opts: func(o *Options) {
				o.Image, o.StorageClass, o.StorageSize = "registry.example/pg:15", "fast-ssd", "5Gi"
				o.Requests, o.Limits = "cpu=500m,memory=512Mi", "memory=1Gi"
				o.Namespace = "nightly"
			},
			check: func(t *testing.T, pods []corev1.Pod, pvcs []corev1.PersistentVolumeClaim) {
				require.Len(t, pvcs, 3)
				for _, pvc := range pvcs {
					assert.Equal(t, "fast-ssd", *pvc.Spec.StorageClassName)
					assert.Equal(t, resource.MustParse("5Gi"), pvc.Spec.Resources.Requests[corev1.ResourceStorage])
					assert.Equal(t, "run1", pvc.Labels[LabelRun])
				}
				for _, p := range pods {
					assert.Equal(t, "nightly", p.Namespace)
					pg := p.Spec.Containers[0]
					assert.Equal(t, "registry.example/pg:15", pg.Image)
					assert.Equal(t, resource.MustParse("500m"), pg.Resources.Requests[corev1.ResourceCPU])
					assert.Equal(t, resource.MustParse("1Gi"), pg.Resources.Limits[corev1.ResourceMemory])
					assert.Equal(t, "data-"+p.Labels[LabelNode], p.Spec.Volumes[0].PersistentVolumeClaim.ClaimName)
				}
			},
		},
		{
			name: "spec overrides and node names",
			opts: func(o *Options) {
				o.Spec = cluster.Spec{Nodes: []string{"a_1", "b", "c"}, Settings: cluster.Settings{
					"synchronous_commit": "remote_apply", "synchronous_standby_names": "FIRST 1 (b)",
				}}
			},
			check: func(t *testing.T, pods []corev1.Pod, pvcs []corev1.PersistentVolumeClaim) {
				assert.Empty(t, pvcs)
				names := []string{}
				for _, p := range pods {
					names = append(names, p.Name)
					assert.Contains(t, p.Spec.Containers[0].Args, "synchronous_commit=remote_apply")
					assert.Contains(t, p.Spec.Containers[0].Args, "cluster_name="+p.Labels[LabelNode])
					for _, e := range p.Spec.InitContainers[0].Env {
						if e.Name == "SYNC_NAMES" {
							assert.Equal(t, "FIRST 1 (b)", e.Value)
						}
					}
				}
				slices.Sort(names)
				assert.Equal(t, []string{"pg-a-1", "pg-b", "pg-c"}, names)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newFake(nil)
			o := testOptions(cs, &fakeExec{})
			tt.opts(&o)
			c := upFake(t, o)
			pods, err := cs.CoreV1().Pods(c.Namespace()).List(context.Background(), metav1.ListOptions{})
			require.NoError(t, err)
			pvcs, err := cs.CoreV1().PersistentVolumeClaims(c.Namespace()).List(context.Background(), metav1.ListOptions{})
			require.NoError(t, err)
			require.Len(t, pods.Items, 3)
			tt.check(t, pods.Items, pvcs.Items)
		})
	}
}

func TestBadOptionsAreSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(o *Options)
		want string
	}{
		{"access", func(o *Options) { o.Access = "vpn" }, `access "vpn"`},
		{"namespace", func(o *Options) { o.Namespace = "Not_A_Label" }, `namespace "Not_A_Label"`},
		{"requests", func(o *Options) { o.Requests = "cpu" }, "requests"},
		{"limits", func(o *Options) { o.Limits = "memory=lots" }, "limits"},
		{"storage size", func(o *Options) { o.StorageSize = "big" }, "storage size"},
		{"node names", func(o *Options) { o.Spec.Nodes = []string{"n1", "n1"} }, "given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newFake(nil)
			o := testOptions(cs, &fakeExec{})
			tt.mod(&o)
			_, err := Up(context.Background(), o)
			require.ErrorIs(t, err, cluster.ErrSpec)
			assert.NotErrorIs(t, err, ErrKubernetes)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, cs.Actions(), "nothing created for bad input")
		})
	}
}
