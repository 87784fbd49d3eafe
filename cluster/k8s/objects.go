package k8s

import (
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/strongcheck/strongcheck/cluster"
)

// Labels on every object strongcheck creates. Clean-up selects on
// LabelManagedBy (every run) or LabelManagedBy and LabelRun (one run).
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedByValue = "strongcheck"
	LabelName      = "app.kubernetes.io/name"
	NameValue      = "strongcheck-postgres"
	LabelRun       = "strongcheck.io/run"
	LabelNode      = "strongcheck.io/node"
	// LabelRole is the node's role as the harness last set it (primary or
	// standby); the primary Service selects on it.
	LabelRole = "strongcheck.io/role"
)

// Object names inside the run's namespace.
const (
	secretName         = "strongcheck-passwords"
	headlessService    = "pg"
	primaryServiceName = "pg-primary"
)

// Secret keys.
const (
	keySuperuser = "superuser-password"
	keyRepl      = "replication-password"
	keyUser      = "workload-password"
)

// passwords are the run's credentials, generated per run.
type passwords struct{ superuser, repl, user string }

func newPasswords() passwords {
	return passwords{randomString(24, alnum), randomString(24, alnum), randomString(24, alnum)}
}

// builder makes the run's objects; it is pure, so the tests can inspect
// every field.
type builder struct {
	spec      cluster.Spec
	opts      Options
	resources corev1.ResourceRequirements
}

func (b builder) runLabels() map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelRun: b.opts.RunID}
}

func (b builder) meta(name string, extra map[string]string) metav1.ObjectMeta {
	l := b.runLabels()
	for k, v := range extra {
		l[k] = v
	}
	return metav1.ObjectMeta{Name: name, Namespace: b.opts.Namespace, Labels: l}
}

// podName is the pod of node ("pg-n1"); node names may hold '_', which
// Kubernetes names may not.
func podName(node string) string { return "pg-" + dnsName(node) }

// dnsName maps a node name to a DNS label (node names have no '-', so the
// mapping is one-to-one).
func dnsName(node string) string { return strings.ReplaceAll(node, "_", "-") }

func pvcName(node string) string { return "data-" + dnsName(node) }

func (b builder) namespace() *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: b.opts.Namespace, Labels: b.runLabels()}}
}

func (b builder) secret(pw passwords) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: b.meta(secretName, nil),
		Type:       corev1.SecretTypeOpaque,
		StringData: map[string]string{keySuperuser: pw.superuser, keyRepl: pw.repl, keyUser: pw.user},
	}
}

// services are the headless Service that gives every pod a stable DNS name
// (<node>.pg.<namespace>.svc), published even while not ready so a paused
// or killed node keeps its name, and a Service that follows the primary
// (selecting LabelRole=primary) for clients inside the cluster.
func (b builder) services() []*corev1.Service {
	port := []corev1.ServicePort{{Name: "postgres", Port: pgPort, TargetPort: intstr.FromInt32(pgPort)}}
	sel := map[string]string{LabelName: NameValue, LabelRun: b.opts.RunID}
	primarySel := map[string]string{LabelName: NameValue, LabelRun: b.opts.RunID, LabelRole: string(cluster.Primary)}
	return []*corev1.Service{
		{
			ObjectMeta: b.meta(headlessService, nil),
			Spec: corev1.ServiceSpec{
				ClusterIP: corev1.ClusterIPNone, Selector: sel, Ports: port,
				PublishNotReadyAddresses: true,
			},
		},
		{
			ObjectMeta: b.meta(primaryServiceName, nil),
			Spec:       corev1.ServiceSpec{Selector: primarySel, Ports: port},
		},
	}
}

func (b builder) pvc(node string) *corev1.PersistentVolumeClaim {
	class := b.opts.StorageClass
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: b.meta(pvcName(node), map[string]string{LabelNode: node}),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: &class,
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(b.opts.StorageSize)},
			},
		},
	}
}

// ownSettings are the settings that belong to one node; they go on its
// command line only (pg_basebackup and pg_rewind copy the configuration
// files from another node).
var ownSettings = []string{"cluster_name", "listen_addresses", "port", "unix_socket_directories"}

// clusterSettings are the spec's effective settings every node shares, as
// raw values, sorted by name: all but synchronous_standby_names (which
// the harness changes at run time with ALTER SYSTEM; a command-line or
// postgresql.conf value would be overridden or override it),
// primary_conninfo and the node's own.
func (b builder) clusterSettings() [][2]string {
	eff := b.spec.Effective()
	delete(eff, "synchronous_standby_names")
	delete(eff, "primary_conninfo")
	for _, k := range ownSettings {
		delete(eff, k)
	}
	keys := make([]string, 0, len(eff))
	for k := range eff {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]string, len(keys))
	for i, k := range keys {
		out[i] = [2]string{k, unquote(eff[k])}
	}
	return out
}

// commandLineSettings are the settings each node gets as "-c name=value"
// on its postgres command line: clusterSettings, then the node's own
// (cluster_name, listen address, port, socket dir).
func (b builder) commandLineSettings(node string) []string {
	own := map[string]string{
		"cluster_name":            node,
		"listen_addresses":        "*",
		"port":                    "5432",
		"unix_socket_directories": sockDir,
	}
	args := []string{"-D", pgData}
	for _, kv := range b.clusterSettings() {
		args = append(args, "-c", kv[0]+"="+kv[1])
	}
	for _, k := range ownSettings {
		args = append(args, "-c", k+"="+own[k])
	}
	return args
}

// postgresqlConf is what the primary's init container appends to
// postgresql.conf (and pg_basebackup copies to the standbys):
// clusterSettings again, for the servers that start without the
// supervisor's command line. pg_rewind runs crash recovery of a crashed
// target in single-user mode with only the data directory's files: without
// wal_keep_size there, its end-of-recovery checkpoint recycled the WAL
// that pg_rewind then needed ("could not find previous WAL record").
func (b builder) postgresqlConf() string {
	var sb strings.Builder
	sb.WriteString("# written by strongcheck: the cluster-wide settings (also on the command line)\n")
	for _, kv := range b.clusterSettings() {
		sb.WriteString(kv[0] + " = '" + strings.ReplaceAll(kv[1], "'", "''") + "'\n")
	}
	return sb.String()
}

// unquote turns a postgresql.conf string literal ('...') into the raw value
// the command line wants.
func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'")
	}
	return v
}

// pod is node's pod. primaryHost is the primary's pod IP for a standby's
// pg_basebackup ("" for the primary).
func (b builder) pod(node string, role cluster.Role, primaryHost string) *corev1.Pod {
	labels := map[string]string{LabelName: NameValue, LabelNode: node, LabelRole: string(role)}
	secretEnv := func(name, key string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: key,
		}}}
	}
	initEnv := []corev1.EnvVar{
		{Name: "PGDATA", Value: pgData},
		{Name: "PG_BINDIR", Value: b.opts.PGBinDir},
		{Name: "NODE", Value: node},
		{Name: "ROLE", Value: string(role)},
		{Name: "PRIMARY_HOST", Value: primaryHost},
		{Name: "SYNC_NAMES", Value: b.spec.SyncStandbyNames()},
		{Name: "PG_CONF", Value: b.postgresqlConf()},
		secretEnv("SU_PASSWORD", keySuperuser),
		secretEnv("REPL_PASSWORD", keyRepl),
		secretEnv("USER_PASSWORD", keyUser),
	}
	literalEnv(initEnv)
	mounts := []corev1.VolumeMount{
		{Name: "data", MountPath: dataMount},
		{Name: "run", MountPath: sockDir},
		{Name: "tmp", MountPath: "/tmp"},
	}
	uid := b.opts.PostgresUID
	pgSecurity := &corev1.SecurityContext{
		RunAsUser:                &uid,
		RunAsGroup:               &uid,
		RunAsNonRoot:             ptr(true),
		AllowPrivilegeEscalation: ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	root := int64(0)
	sidecarSecurity := &corev1.SecurityContext{
		RunAsUser:                &root,
		RunAsNonRoot:             ptr(false),
		AllowPrivilegeEscalation: ptr(false),
		ReadOnlyRootFilesystem:   ptr(true),
		Capabilities: &corev1.Capabilities{
			Drop: []corev1.Capability{"ALL"},
			Add:  []corev1.Capability{"NET_ADMIN"},
		},
	}
	data := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if b.opts.StorageClass != "" {
		data = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvcName(node)}}
	}
	small := corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi"),
	}}
	return &corev1.Pod{
		ObjectMeta: b.meta(podName(node), labels),
		Spec: corev1.PodSpec{
			Hostname:                      dnsName(node),
			Subdomain:                     headlessService,
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptr(int64(10)),
			EnableServiceLinks:            ptr(false),
			AutomountServiceAccountToken:  ptr(false),
			ShareProcessNamespace:         ptr(false),
			SecurityContext: &corev1.PodSecurityContext{
				FSGroup:        &uid,
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			InitContainers: []corev1.Container{{
				Name:            initCtr,
				Image:           b.opts.Image,
				ImagePullPolicy: b.opts.PullPolicy,
				Command:         literal("bash", "-c", initScript, "strongcheck-init"),
				Env:             initEnv,
				VolumeMounts:    mounts,
				SecurityContext: pgSecurity,
				Resources:       b.resources,
			}},
			Containers: []corev1.Container{
				{
					Name:            postgresCtr,
					Image:           b.opts.Image,
					ImagePullPolicy: b.opts.PullPolicy,
					Command:         literal("bash", "-c", supervisorScript, "strongcheck-supervisor"),
					Args:            literal(b.commandLineSettings(node)...),
					Env: literalEnv([]corev1.EnvVar{
						{Name: "PGDATA", Value: pgData}, {Name: "PGPASSFILE", Value: passFile},
						{Name: "PG_BINDIR", Value: b.opts.PGBinDir},
					}),
					Ports:           []corev1.ContainerPort{{Name: "postgres", ContainerPort: pgPort}},
					VolumeMounts:    mounts,
					SecurityContext: pgSecurity,
					Resources:       b.resources,
					// Readiness only: a liveness probe would restart a paused
					// or killed node behind the nemesis's back.
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: literal(readyCmd()...)}},
						PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 2, SuccessThreshold: 1,
					},
				},
				{
					Name:            sidecarCtr,
					Image:           b.opts.SidecarImage,
					ImagePullPolicy: b.opts.PullPolicy,
					Command:         literal("sh", "-c", sidecarScript),
					SecurityContext: sidecarSecurity,
					Resources:       small,
				},
			},
			Volumes: []corev1.Volume{
				{Name: "data", VolumeSource: data},
				{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		},
	}
}

func ptr[T any](v T) *T { return &v }

// literal escapes a container's command, arguments or exec probe for
// Kubernetes, which expands $(NAME) references to the container's
// variables in them and turns $$ into $: every $ is doubled, so the
// container runs exactly the given text (the supervisor's "echo $$" would
// otherwise write a lone "$" as its PID, and no fault could find the
// postmaster).
func literal(args ...string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ReplaceAll(a, "$", "$$")
	}
	return out
}

// literalEnv escapes the plain values of env in place (Kubernetes expands
// $(NAME) in them too) and returns it.
func literalEnv(env []corev1.EnvVar) []corev1.EnvVar {
	for i := range env {
		if env[i].ValueFrom == nil {
			env[i].Value = strings.ReplaceAll(env[i].Value, "$", "$$")
		}
	}
	return env
}
