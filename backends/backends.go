// Package backends builds, by name, the cluster backends a run can use:
// "local" (cluster/local: real processes in network namespaces on this
// machine), "k8s" (cluster/k8s: Kubernetes through client-go) and
// "existing" (cluster/existing: a cluster the user runs). It is the one
// place that knows them all; the harness sees only the harness.Backend it
// is given, and the command line only chooses a name.
package backends

import (
	"context"
	"errors"
	"fmt"

	"github.com/strongcheck/strongcheck/cluster"
	"github.com/strongcheck/strongcheck/cluster/existing"
	"github.com/strongcheck/strongcheck/cluster/k8s"
	"github.com/strongcheck/strongcheck/cluster/local"
	"github.com/strongcheck/strongcheck/harness"
	"github.com/strongcheck/strongcheck/internal/usererr"
)

// Backend names, as `--backend` spells them.
const (
	Local    = "local"
	K8s      = "k8s"
	Existing = "existing"
)

// Choice is a backend chosen by name with the options of that backend.
type Choice struct {
	// Name is Local or K8s.
	Name string
	// Subnet is the local backend's bridge subnet, or local.AutoSubnet.
	Subnet string
	// K8s are the k8s backend's options (the spec is set per run).
	K8s k8s.Options
	// Existing are the existing backend's options: the user's cluster.
	Existing existing.Options
}

// Build returns the harness.Backend of c. c must have passed Validate.
func (c Choice) Build() harness.Backend {
	switch c.Name {
	case K8s:
		return NewK8s(c.K8s)
	case Existing:
		return NewExisting(c.Existing)
	}
	return NewLocal(c.Subnet, nil)
}

// Preflight checks, before any run folder exists, that the backend can
// work here: the local backend's root and binaries, or that the
// Kubernetes cluster answers.
func (c Choice) Preflight(ctx context.Context) error {
	switch c.Name {
	case K8s:
		_, _, err := k8s.Connect(ctx, c.K8s)
		return err
	case Existing:
		// An unreachable node, a topology strongcheck would misread or
		// a fault the user did not allow for this cluster stops here.
		_, err := existing.Attach(ctx, c.Existing)
		if err != nil && errors.Is(err, existing.ErrUsage) {
			return usererr.Wrap(err)
		}
		return err
	}
	return PreflightLocal()
}

// NewLocal builds clusters with cluster/local on subnet (local.AutoSubnet
// for a free one); logf, when set, receives the backend's log lines.
func NewLocal(subnet string, logf func(string, ...any)) harness.Backend {
	return harness.Backend{
		Name:          Local,
		SharesMachine: true,
		Up: func(ctx context.Context, spec cluster.Spec, dir string) (cluster.Cluster, error) {
			if err := local.Preflight(); err != nil {
				return nil, err
			}
			opts := local.Options{Dir: dir, Subnet: subnet, Spec: spec, Logf: logf}
			if spec.Manager.Managed() {
				return local.UpManaged(ctx, opts)
			}
			return local.Up(ctx, opts)
		},
		Leave: leaveLocal,
		PostgresVersion: func(c cluster.Cluster) string {
			switch lc := c.(type) {
			case *local.Cluster:
				return lc.PostgresVersion()
			case *local.ManagedCluster:
				return lc.PostgresVersion()
			}
			return ""
		},
	}
}

// leaveLocal leaves a local cluster running after its run.
func leaveLocal(c cluster.Cluster) (string, error) {
	lc, ok := c.(*local.Cluster)
	if !ok {
		return "", fmt.Errorf("not a local cluster: %T", c)
	}
	if err := lc.Detach(); err != nil {
		return "", err
	}
	return fmt.Sprintf("strongcheck cluster status --dir %s (--show-passwords for psql); strongcheck cluster down --dir %s removes it", lc.Dir(), lc.Dir()), nil
}

// NewK8s builds clusters on Kubernetes with cluster/k8s.
func NewK8s(opts k8s.Options) harness.Backend {
	return harness.Backend{
		Name: K8s,
		Up: func(ctx context.Context, spec cluster.Spec, _ string) (cluster.Cluster, error) {
			o := opts
			o.Spec = spec
			return k8s.Up(ctx, o)
		},
	}
}

// NewExisting attaches runs to the user's own cluster (cluster/existing).
func NewExisting(opts existing.Options) harness.Backend {
	role := ""
	if len(opts.Nodes) > 0 {
		role = opts.Nodes[0].User
	}
	return harness.Backend{
		Name:       Existing,
		ClientRole: role,
		Up:         existing.BackendUp(opts),
		PostgresVersion: func(c cluster.Cluster) string {
			if d, ok := c.(interface{ PostgresVersion() string }); ok {
				return d.PostgresVersion()
			}
			return ""
		},
	}
}

// PreflightLocal checks the machine before a run starts, so that a missing
// binary is an error with an install hint rather than a failed run.
func PreflightLocal() error {
	if err := local.Preflight(); err != nil {
		return err
	}
	_, err := local.FindBinaries()
	return err
}

// CheckSubnet refuses a subnet the local backend could not use, before
// anything starts: the error is the user's (usererr).
func CheckSubnet(subnet string) error {
	if subnet == local.AutoSubnet {
		return nil
	}
	if _, err := local.ParseSubnet(subnet); err != nil {
		return usererr.New("--subnet: %w (or auto)", err)
	}
	return nil
}
