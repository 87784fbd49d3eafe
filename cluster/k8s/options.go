package k8s

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/strongcheck/strongcheck/cluster"
)

// Access is how the harness reaches the PostgreSQL pods.
type Access string

// The two ways to reach the pods.
const (
	// PortForward tunnels every node's port 5432 through the API server to
	// a fixed port on 127.0.0.1 (like kubectl port-forward). It works from a
	// laptop or CI runner outside the cluster.
	PortForward Access = "port-forward"
	// InCluster connects to the pods' IPs directly: the harness must run in
	// a pod of the same cluster (or on a network that routes pod IPs).
	InCluster Access = "in-cluster"
)

// Defaults for Options.
const (
	DefaultNamespace    = "strongcheck"
	DefaultImage        = "postgres:16"
	DefaultSidecarImage = "nicolaka/netshoot:v0.13"
	DefaultStorageSize  = "1Gi"
	DefaultTimeout      = 5 * time.Minute
	// DefaultPostgresUID is the postgres user of the official image.
	DefaultPostgresUID = 999
)

// Options configure the Kubernetes backend. The zero value is usable: the
// kubeconfig's current context, namespace "strongcheck", image postgres:16,
// emptyDir storage, port-forward access.
type Options struct {
	// Spec is the cluster to build; its first node is the primary.
	Spec cluster.Spec
	// Logf, when set, receives progress lines (never a password).
	Logf func(format string, args ...any)
	// Kubeconfig is the kubeconfig file; empty means $KUBECONFIG, then
	// ~/.kube/config, then the in-cluster service account.
	Kubeconfig string
	// Context is the kubeconfig context; empty means its current context.
	Context string
	// Namespace holds every object of the run. It is created (and deleted
	// by Close) when missing; strongcheck objects of an earlier, crashed run
	// found in it are deleted first, so two runs must not share a namespace.
	Namespace string
	// Image is the PostgreSQL image. It must provide bash, coreutils and
	// the server binaries (postgres, initdb, pg_ctl, pg_isready, psql,
	// pg_basebackup, pg_rewind): on PATH as in the official image, under
	// PGBinDir, or else under the newest /usr/lib/postgresql/*/bin as
	// Debian's packages install them (detected in the pod).
	Image string
	// PGBinDir, when set, is the folder of the server binaries in Image;
	// empty means PATH, then the newest /usr/lib/postgresql/*/bin.
	PGBinDir string
	// PostgresUID is the uid (and gid) the PostgreSQL containers run as:
	// the image's postgres user, which must have an entry in the image's
	// /etc/passwd (initdb looks it up). Zero means DefaultPostgresUID (the
	// official image's); Debian's package gives another (the e2e image's
	// is read from its /etc/passwd). The pod's init container says which
	// uid the image's postgres user has when they differ.
	PostgresUID int64
	// PullPolicy is the containers' imagePullPolicy: "" (Kubernetes'
	// default), Always, IfNotPresent or Never (images imported into the
	// node's runtime, as `make e2e-k8s` does).
	PullPolicy corev1.PullPolicy
	// SidecarImage runs the fault sidecar; it must provide sh and nft.
	SidecarImage string
	// StorageClass, when set, gives every node a PersistentVolumeClaim of
	// that class and StorageSize; empty means an emptyDir volume (data
	// survives container restarts, not pod deletion: pods are never
	// deleted during a run).
	StorageClass string
	StorageSize  string
	// Requests and Limits are the postgres container's resources as
	// "cpu=500m,memory=512Mi"; empty means none.
	Requests string
	Limits   string
	// Access chooses how the harness connects: PortForward (default) or
	// InCluster.
	Access Access
	// Timeout bounds bringing the cluster up (pulling images, initdb,
	// base backups) and each Start or Rejoin; default 5 minutes.
	Timeout time.Duration
	// RunID labels every object of this run; empty means a random one.
	RunID string

	// Client, RESTConfig and Executor replace the ones built from the
	// kubeconfig (tests pass a fake clientset and a fake executor). With a
	// Client but no RESTConfig, Access must be InCluster unless a forwarder
	// is also injected.
	Client     kubernetes.Interface
	RESTConfig *rest.Config
	Executor   Executor

	// forward replaces the client-go port-forward (tests).
	forward forwardFunc
	// waitReplication replaces the SQL wait for streaming standbys at the
	// end of Up (tests without PostgreSQL set it to a no-op).
	waitReplication func(c *Cluster) error
}

// AddFlags registers the backend's flags on fs (the CLI's `test` and
// `cluster up` commands). Parse errors surface from Up's validation.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "k8s: kubeconfig file (default $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&o.Context, "context", o.Context, "k8s: kubeconfig context (default the current context)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "k8s: namespace of the test's own (default "+DefaultNamespace+"); created and deleted by the run")
	fs.StringVar(&o.Image, "image", o.Image, "k8s: PostgreSQL image (default "+DefaultImage+")")
	fs.StringVar(&o.PGBinDir, "pg-bindir", o.PGBinDir, "k8s: folder of the server binaries in --image (default: PATH, then the newest /usr/lib/postgresql/*/bin)")
	fs.Int64Var(&o.PostgresUID, "postgres-uid", o.PostgresUID, "k8s: uid of --image's postgres user (default 999, the official image's)")
	fs.StringVar((*string)(&o.PullPolicy), "image-pull-policy", string(o.PullPolicy), "k8s: imagePullPolicy of the pods' containers: Always, IfNotPresent or Never (default: Kubernetes' own)")
	fs.StringVar(&o.SidecarImage, "sidecar-image", o.SidecarImage, "k8s: fault sidecar image with nft (default "+DefaultSidecarImage+")")
	fs.StringVar(&o.StorageClass, "storage-class", o.StorageClass, "k8s: storage class for per-node PVCs (default: emptyDir, no PVC)")
	fs.StringVar(&o.StorageSize, "storage-size", o.StorageSize, "k8s: PVC size (default "+DefaultStorageSize+")")
	fs.StringVar(&o.Requests, "requests", o.Requests, "k8s: postgres container requests, e.g. cpu=500m,memory=512Mi")
	fs.StringVar(&o.Limits, "limits", o.Limits, "k8s: postgres container limits, e.g. cpu=1,memory=1Gi")
	fs.StringVar((*string)(&o.Access), "access", string(o.Access), "k8s: how the harness reaches the pods: port-forward or in-cluster (default port-forward)")
	fs.DurationVar(&o.Timeout, "k8s-timeout", o.Timeout, "k8s: time limit for pods to become ready and for each start/rejoin (default 5m)")
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Image == "" {
		o.Image = DefaultImage
	}
	if o.SidecarImage == "" {
		o.SidecarImage = DefaultSidecarImage
	}
	if o.PostgresUID == 0 {
		o.PostgresUID = DefaultPostgresUID
	}
	if o.StorageSize == "" {
		o.StorageSize = DefaultStorageSize
	}
	if o.Access == "" {
		o.Access = PortForward
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.RunID == "" {
		o.RunID = randomString(8, lowerAlnum)
	}
	return o
}

// validate checks the user's input; errors wrap cluster.ErrSpec (exit 254).
func (o Options) validate() error {
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("%w: namespace %q: %s", cluster.ErrSpec, o.Namespace, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(o.RunID); len(errs) > 0 || o.RunID == "" {
		return fmt.Errorf("%w: run id %q: %s", cluster.ErrSpec, o.RunID, strings.Join(errs, "; "))
	}
	switch o.Access {
	case PortForward, InCluster:
	default:
		return fmt.Errorf("%w: access %q: use %q or %q", cluster.ErrSpec, o.Access, PortForward, InCluster)
	}
	if o.Image == "" || strings.ContainsAny(o.Image, " \t\n") {
		return fmt.Errorf("%w: image %q", cluster.ErrSpec, o.Image)
	}
	if o.PostgresUID < 0 {
		return fmt.Errorf("%w: postgres uid %d: want the image's postgres user (PostgreSQL refuses to run as root)", cluster.ErrSpec, o.PostgresUID)
	}
	switch o.PullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("%w: image pull policy %q: use %s, %s or %s", cluster.ErrSpec, o.PullPolicy, corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever)
	}
	if strings.ContainsAny(o.PGBinDir, " \t\n:") || (o.PGBinDir != "" && !strings.HasPrefix(o.PGBinDir, "/")) {
		return fmt.Errorf("%w: pg bindir %q: want an absolute path without spaces or colons", cluster.ErrSpec, o.PGBinDir)
	}
	if _, err := resource.ParseQuantity(o.StorageSize); err != nil {
		return fmt.Errorf("%w: storage size %q: %v", cluster.ErrSpec, o.StorageSize, err)
	}
	if _, err := o.resources(); err != nil {
		return err
	}
	return nil
}

// resources parses Requests and Limits.
func (o Options) resources() (corev1.ResourceRequirements, error) {
	var rr corev1.ResourceRequirements
	var err error
	if rr.Requests, err = ParseResourceList(o.Requests); err != nil {
		return rr, fmt.Errorf("%w: requests: %w", cluster.ErrSpec, err)
	}
	if rr.Limits, err = ParseResourceList(o.Limits); err != nil {
		return rr, fmt.Errorf("%w: limits: %w", cluster.ErrSpec, err)
	}
	return rr, nil
}

// ParseResourceList parses "cpu=500m,memory=512Mi" (empty: nil list).
func ParseResourceList(s string) (corev1.ResourceList, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	out := corev1.ResourceList{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want name=quantity", part)
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %w", k, v, err)
		}
		out[corev1.ResourceName(k)] = q
	}
	return out, nil
}
