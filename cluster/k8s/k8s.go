package k8s

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/strongcheck/strongcheck/cluster"
)

// BackendName is what Backend returns and the CLI's --backend value.
const BackendName = "k8s"

// opTimeout bounds one fault or control exec that is not a Start or Rejoin.
const opTimeout = 30 * time.Second

// Cluster is a PostgreSQL cluster in pods of one namespace. It implements
// cluster.Cluster; create it with Up and always Close it.
type Cluster struct {
	opts   Options
	spec   cluster.Spec
	nodes  []string
	cs     kubernetes.Interface
	cfg    *rest.Config
	exec   Executor
	pw     passwords
	build  builder
	logf   func(format string, args ...any)
	swept  []string
	ownsNS bool // the namespace was created by strongcheck: Close deletes it
	// errLog is this cluster's hold on client-go's unreturnable errors.
	errLog *func(format string, args ...any)

	mu      sync.Mutex
	ips     map[string]string       // pod IPs, fixed for a pod's life
	status  map[string]cluster.Role // Down or Paused as far as we know
	roles   map[string]cluster.Role // LabelRole as last set
	proxies map[string]*proxy
	closed  bool

	// UpDuration is how long Up took.
	UpDuration time.Duration
}

var _ cluster.Cluster = (*Cluster)(nil)

// Up creates the run's objects and waits until every pod is ready and (with
// SQL, through ConnString) every standby streams as the spec's sync list
// asks. opts.Spec's first node is the primary. On failure it deletes what it
// created and returns an error naming the object and the reason, wrapping
// ErrKubernetes for cluster-side failures and cluster.ErrSpec for bad
// input.
func Up(ctx context.Context, opts Options) (*Cluster, error) {
	t0 := time.Now()
	spec, logf := opts.Spec, opts.Logf
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	rr, _ := opts.resources()
	if logf == nil {
		logf = func(string, ...any) {}
	}
	cs, cfg := opts.Client, opts.RESTConfig
	if cs == nil {
		var err error
		if cs, cfg, err = Connect(ctx, opts); err != nil {
			return nil, err
		}
	}
	c := &Cluster{
		opts: opts, spec: spec, nodes: spec.NodeNames(), cs: cs, cfg: cfg,
		exec:    opts.Executor,
		pw:      newPasswords(),
		build:   builder{spec: spec, opts: opts, resources: rr},
		logf:    logf,
		ips:     map[string]string{},
		status:  map[string]cluster.Role{},
		roles:   map[string]cluster.Role{},
		proxies: map[string]*proxy{},
	}
	if c.exec == nil {
		if cfg == nil {
			return nil, fmt.Errorf("%w: options: a Client without RESTConfig needs an Executor", cluster.ErrSpec)
		}
		c.exec = RemoteExecutor{Client: cs, Config: cfg, Namespace: opts.Namespace}
	}
	if opts.Access == PortForward && opts.forward == nil {
		if cfg == nil {
			return nil, fmt.Errorf("%w: options: port-forward access needs a RESTConfig", cluster.ErrSpec)
		}
		c.opts.forward = clientGoForward(cs, cfg, opts.Namespace)
	}
	c.errLog = routeClientGoErrors(opts.Logf)
	if err := c.up(ctx); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if cerr := c.Close(cctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("clean-up after the failed start: %w", cerr))
		}
		return nil, err
	}
	c.UpDuration = time.Since(t0)
	logf("k8s: cluster %s up in namespace %s in %s", opts.RunID, opts.Namespace, c.UpDuration.Round(time.Millisecond))
	return c, nil
}

// Connect builds a clientset from the options' kubeconfig and context and
// checks that the API server answers. Its errors wrap ErrKubernetes and say
// what is missing.
func Connect(ctx context.Context, opts Options) (kubernetes.Interface, *rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if opts.Kubeconfig != "" {
		rules.ExplicitPath = opts.Kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, nil, fmt.Errorf("%w: no kubeconfig found: pass --kubeconfig, set KUBECONFIG, create ~/.kube/config (`strongcheck kind up` writes one) or run in a pod: %w", ErrKubernetes, err)
		}
		where := opts.Kubeconfig
		if where == "" {
			where = strings.Join(rules.Precedence, ":")
		}
		if opts.Context != "" {
			where += " context " + opts.Context
		}
		return nil, nil, fmt.Errorf("%w: kubeconfig %s: %w", ErrKubernetes, where, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client for %s: %w", ErrKubernetes, cfg.Host, err)
	}
	probe := rest.CopyConfig(cfg)
	probe.Timeout = 10 * time.Second
	dc, err := discovery.NewDiscoveryClientForConfig(probe)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client for %s: %w", ErrKubernetes, cfg.Host, err)
	}
	done := make(chan error, 1)
	go func() { _, err := dc.ServerVersion(); done <- err }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: API server %s: %s: %w", ErrKubernetes, cfg.Host, reason("get", "version", err), err)
	}
	return cs, cfg, nil
}

func (c *Cluster) ns() string { return c.opts.Namespace }

// up creates everything and waits; Up cleans up when it fails.
func (c *Cluster) up(ctx context.Context) error {
	if err := c.ensureNamespace(ctx); err != nil {
		return err
	}
	swept, err := deleteLabelled(ctx, c.cs, c.ns(), LabelManagedBy+"="+ManagedByValue+","+LabelRun+"!="+c.opts.RunID, true, c.opts.Timeout)
	c.swept = swept
	if len(swept) > 0 {
		c.logf("k8s: removed %d objects of an earlier run from namespace %s: %s", len(swept), c.ns(), strings.Join(swept, ", "))
	}
	if err != nil {
		return err
	}
	core := c.cs.CoreV1()
	if _, err := core.Secrets(c.ns()).Create(ctx, c.build.secret(c.pw), metav1.CreateOptions{}); err != nil {
		return apiError("create", "secret", c.ns(), secretName, err)
	}
	for _, s := range c.build.services() {
		if _, err := core.Services(c.ns()).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return apiError("create", "service", c.ns(), s.Name, err)
		}
	}
	if c.opts.StorageClass != "" {
		for _, n := range c.nodes {
			if _, err := core.PersistentVolumeClaims(c.ns()).Create(ctx, c.build.pvc(n), metav1.CreateOptions{}); err != nil {
				return apiError("create", "persistentvolumeclaim", c.ns(), pvcName(n), err)
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	primary := c.nodes[0]
	if err := c.createPod(ctx, primary, cluster.Primary, ""); err != nil {
		return err
	}
	if err := c.waitReady(wctx, primary); err != nil {
		return err
	}
	for _, n := range c.nodes[1:] {
		if err := c.createPod(ctx, n, cluster.Standby, c.ip(primary)); err != nil {
			return err
		}
	}
	for _, n := range c.nodes[1:] {
		if err := c.waitReady(wctx, n); err != nil {
			return err
		}
	}
	if c.opts.Access == PortForward {
		for _, n := range c.nodes {
			p, err := startProxy(ctx, podName(n), c.opts.forward, time.Until(deadline(wctx)))
			if err != nil {
				return fmt.Errorf("%w: %w", ErrKubernetes, err)
			}
			c.mu.Lock()
			c.proxies[n] = p
			c.mu.Unlock()
		}
	}
	wait := c.opts.waitReplication
	if wait == nil {
		wait = func(c *Cluster) error {
			need := c.spec.SyncStandbyNames() != ""
			return cluster.WaitStreaming(wctx, c, primary, c.nodes[1:], need)
		}
	}
	if err := wait(c); err != nil {
		return fmt.Errorf("%w: standbys not streaming: %w", ErrKubernetes, err)
	}
	return nil
}

func deadline(ctx context.Context) time.Time {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Now().Add(DefaultTimeout)
	}
	return d
}

// ensureNamespace creates the namespace when missing, waits for one being
// deleted, and remembers whether strongcheck owns it.
func (c *Cluster) ensureNamespace(ctx context.Context) error {
	nsc := c.cs.CoreV1().Namespaces()
	end := time.Now().Add(c.opts.Timeout)
	for {
		ns, err := nsc.Get(ctx, c.ns(), metav1.GetOptions{})
		switch {
		case apierrors.IsForbidden(err):
			// Namespace-scoped RBAC: use the namespace as given.
			return nil
		case apierrors.IsNotFound(err):
			if _, err := nsc.Create(ctx, c.build.namespace(), metav1.CreateOptions{}); err != nil {
				return apiError("create", "namespace", "", c.ns(), err)
			}
			c.ownsNS = true
			return nil
		case err != nil:
			return apiError("get", "namespace", "", c.ns(), err)
		case ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating:
			if time.Now().After(end) {
				return fmt.Errorf("%w: namespace %s: still terminating after %s", ErrKubernetes, c.ns(), c.opts.Timeout)
			}
			c.logf("k8s: namespace %s is being deleted; waiting", c.ns())
			if err := sleep(ctx, time.Second); err != nil {
				return err
			}
		default:
			c.ownsNS = ns.Labels[LabelManagedBy] == ManagedByValue
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func (c *Cluster) createPod(ctx context.Context, node string, role cluster.Role, primaryHost string) error {
	if _, err := c.cs.CoreV1().Pods(c.ns()).Create(ctx, c.build.pod(node, role, primaryHost), metav1.CreateOptions{}); err != nil {
		return apiError("create", "pod", c.ns(), podName(node), err)
	}
	c.mu.Lock()
	c.roles[node] = role
	c.mu.Unlock()
	return nil
}

// Waiting reasons after which a pod will not become ready by itself.
var fatalWaiting = map[string]bool{
	"ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
	"CreateContainerConfigError": true, "CreateContainerError": true,
	"CrashLoopBackOff": true, "RunContainerError": true,
}

// waitReady polls node's pod until it is ready with an IP, and fails early
// with the reason when it cannot become ready (image pull, failed init).
func (c *Cluster) waitReady(ctx context.Context, node string) error {
	name := podName(node)
	var last *corev1.Pod
	for {
		p, err := c.cs.CoreV1().Pods(c.ns()).Get(ctx, name, metav1.GetOptions{})
		if err != nil && ctx.Err() == nil {
			return apiError("get", "pod", c.ns(), name, err)
		}
		if err == nil {
			last = p
			if bad := c.podProblem(ctx, p); bad != "" {
				return fmt.Errorf("%w: pod %s/%s (node %s) cannot start: %s", ErrKubernetes, c.ns(), name, node, bad)
			}
			if podReady(p) && p.Status.PodIP != "" {
				c.mu.Lock()
				c.ips[node] = p.Status.PodIP
				c.mu.Unlock()
				c.logf("k8s: pod %s ready at %s", name, p.Status.PodIP)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: pod %s/%s (node %s) not ready within %s: %s", ErrKubernetes, c.ns(), name, node, c.opts.Timeout, describePod(last))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podProblem says why p will not become ready, "" when it still may.
func (c *Cluster) podProblem(ctx context.Context, p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "the pod is being deleted"
	}
	if p.Status.Phase == corev1.PodFailed {
		return fmt.Sprintf("pod failed: %s %s", p.Status.Reason, p.Status.Message)
	}
	check := func(kind string, sts []corev1.ContainerStatus) string {
		for _, st := range sts {
			if w := st.State.Waiting; w != nil && fatalWaiting[w.Reason] {
				msg := fmt.Sprintf("%s container %q (image %s): %s: %s", kind, st.Name, st.Image, w.Reason, w.Message)
				if w.Reason == "CrashLoopBackOff" {
					msg += c.logTail(ctx, p.Name, st.Name, true)
				}
				return msg
			}
			if kind == "init" {
				t := st.State.Terminated
				if t == nil {
					t = st.LastTerminationState.Terminated
				}
				if t != nil && t.ExitCode != 0 {
					return fmt.Sprintf("init container %q exited with status %d (%s)%s", st.Name, t.ExitCode, t.Reason, c.logTail(ctx, p.Name, st.Name, st.State.Terminated == nil))
				}
			}
		}
		return ""
	}
	if s := check("init", p.Status.InitContainerStatuses); s != "" {
		return s
	}
	return check("", p.Status.ContainerStatuses)
}

// logTail is the last lines of a container's log, for error messages.
func (c *Cluster) logTail(ctx context.Context, pod, container string, previous bool) string {
	tail := int64(15)
	raw, err := c.cs.CoreV1().Pods(c.ns()).GetLogs(pod, &corev1.PodLogOptions{Container: container, TailLines: &tail, Previous: previous}).DoRaw(ctx)
	if err != nil || len(strings.TrimSpace(string(raw))) == 0 {
		return ""
	}
	return "; its log ends:\n" + strings.TrimRight(string(raw), "\n")
}

func describePod(p *corev1.Pod) string {
	if p == nil {
		return "never seen"
	}
	parts := []string{"phase " + string(p.Status.Phase)}
	for _, cond := range p.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			s := fmt.Sprintf("%s=%s", cond.Type, cond.Status)
			if cond.Reason != "" {
				s += " (" + cond.Reason + ": " + cond.Message + ")"
			}
			parts = append(parts, s)
		}
	}
	for _, st := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		switch {
		case st.State.Waiting != nil:
			parts = append(parts, fmt.Sprintf("%s waiting (%s)", st.Name, st.State.Waiting.Reason))
		case st.State.Running != nil && !st.Ready:
			parts = append(parts, st.Name+" running, not ready")
		}
	}
	return strings.Join(parts, ", ")
}

// Backend implements cluster.Cluster.
func (c *Cluster) Backend() string { return BackendName }

// Spec implements cluster.Cluster.
func (c *Cluster) Spec() cluster.Spec { return c.spec }

// Nodes implements cluster.Cluster.
func (c *Cluster) Nodes() []string { return append([]string(nil), c.nodes...) }

// Namespace is the namespace holding the run's objects.
func (c *Cluster) Namespace() string { return c.ns() }

// RunID is the value of LabelRun on the run's objects.
func (c *Cluster) RunID() string { return c.opts.RunID }

// Swept lists the objects of an earlier run that Up deleted from the
// namespace ("pod/pg-n1", ...), for the harness to report.
func (c *Cluster) Swept() []string { return append([]string(nil), c.swept...) }

func (c *Cluster) ip(node string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ips[node]
}

// Connect timeouts of ConnString. Through port-forward every connection
// opens a new stream through the API server, the kubelet and the runtime
// into the pod: on a loaded 2-core machine running the whole cluster that
// took more than 2 s (a failover failed on it), so it gets longer.
const (
	connectTimeoutDirect  = 2
	connectTimeoutForward = 6
)

// ConnString implements cluster.Cluster: 127.0.0.1 and the node's stable
// forwarded port with PortForward access, the pod IP with InCluster.
func (c *Cluster) ConnString(node string, admin bool) string {
	user, pw := workUser, c.pw.user
	if admin {
		user, pw = superuser, c.pw.superuser
	}
	host, port, timeout := c.ip(node), pgPort, connectTimeoutDirect
	c.mu.Lock()
	if p := c.proxies[node]; p != nil {
		host, port = p.addr()
		timeout = connectTimeoutForward
	}
	c.mu.Unlock()
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=%d",
		host, port, user, pw, workDB, timeout)
}

func (c *Cluster) check(node string) error {
	for _, n := range c.nodes {
		if n == node {
			return nil
		}
	}
	return fmt.Errorf("%w: no node %q (nodes: %s)", cluster.ErrSpec, node, strings.Join(c.nodes, ", "))
}

// run execs cmd in node's container and explains a failure as op.
func (c *Cluster) run(ctx context.Context, op, node, container string, cmd []string, stdin io.Reader, timeout time.Duration) (string, error) {
	if err := c.check(node); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, errOut, err := c.exec.Exec(ctx, podName(node), container, cmd, stdin)
	if err != nil {
		return out, execError(op+" "+node, c.ns(), podName(node), container, errOut, err)
	}
	return out, nil
}

func (c *Cluster) setStatus(node string, r cluster.Role) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r == cluster.Unknown {
		delete(c.status, node)
		return
	}
	c.status[node] = r
}

// Kill implements cluster.Cluster: SIGKILL of the postmaster and all its
// children from inside the postgres container, waiting until the
// supervisor has reaped them. The pod and container stay up.
func (c *Cluster) Kill(ctx context.Context, node string) error {
	if _, err := c.run(ctx, "kill", node, postgresCtr, killCmd(), nil, opTimeout); err != nil {
		return err
	}
	c.setStatus(node, cluster.Down)
	return nil
}

// Start implements cluster.Cluster: it tells the supervisor to run postgres
// and waits (up to Options.Timeout) until it accepts connections.
func (c *Cluster) Start(ctx context.Context, node string) error {
	secs := int(c.opts.Timeout / time.Second)
	if _, err := c.run(ctx, "start", node, postgresCtr, startCmd(secs), nil, c.opts.Timeout+opTimeout); err != nil {
		return err
	}
	c.setStatus(node, cluster.Unknown)
	return nil
}

// Stop implements cluster.Cluster (pg_ctl stop -m fast, after thawing a
// paused node).
func (c *Cluster) Stop(ctx context.Context, node string) error {
	if _, err := c.run(ctx, "stop", node, postgresCtr, stopCmd(), nil, 2*opTimeout+10*time.Second); err != nil {
		return err
	}
	c.setStatus(node, cluster.Down)
	return nil
}

// Pause implements cluster.Cluster: SIGSTOP of the postmaster, then of its
// children. It fails when postgres is not running.
func (c *Cluster) Pause(ctx context.Context, node string) error {
	if _, err := c.run(ctx, "pause", node, postgresCtr, pauseCmd(), nil, opTimeout); err != nil {
		return err
	}
	c.setStatus(node, cluster.Paused)
	return nil
}

// Resume implements cluster.Cluster: SIGCONT of the children, then of the
// postmaster.
func (c *Cluster) Resume(ctx context.Context, node string) error {
	if _, err := c.run(ctx, "resume", node, postgresCtr, resumeCmd(), nil, opTimeout); err != nil {
		return err
	}
	c.mu.Lock()
	if c.status[node] == cluster.Paused {
		delete(c.status, node)
	}
	c.mu.Unlock()
	return nil
}

var _ cluster.BackendPauser = (*Cluster)(nil)

// PauseBackends implements cluster.BackendPauser: SIGSTOP, in the postgres
// container, of those of pids that are children of its postmaster.
func (c *Cluster) PauseBackends(ctx context.Context, node string, pids []int) ([]int, error) {
	return c.signalBackends(ctx, node, "STOP", pids)
}

// ResumeBackends implements cluster.BackendPauser (Stop and Kill continue
// every process anyway).
func (c *Cluster) ResumeBackends(ctx context.Context, node string, pids []int) error {
	_, err := c.signalBackends(ctx, node, "CONT", pids)
	return err
}

func (c *Cluster) signalBackends(ctx context.Context, node, sig string, pids []int) ([]int, error) {
	if len(pids) == 0 {
		return nil, nil
	}
	out, err := c.run(ctx, "signal-backends", node, postgresCtr, signalBackendsCmd(sig, pids), nil, opTimeout)
	if err != nil {
		return nil, err
	}
	var done []int
	for _, f := range strings.Fields(out) {
		p, err := strconv.Atoi(f)
		if err != nil {
			return done, fmt.Errorf("%w: signal-backends on %s: unexpected output %q", ErrKubernetes, node, out)
		}
		done = append(done, p)
	}
	return done, nil
}

// Partition implements cluster.Cluster: every pod gets, from its sidecar,
// an nftables table that drops traffic to and from the pod IPs of the peers
// the grudge cuts it from (pods with no peer to cut get the table removed).
// Traffic from the harness (port-forward via the pod's loopback, or its own
// pod IP) is untouched.
func (c *Cluster) Partition(ctx context.Context, g cluster.Grudge) error {
	peers := map[string][]string{}
	for _, p := range g.Pairs() {
		for _, n := range p {
			if err := c.check(n); err != nil {
				return fmt.Errorf("partition: %w", err)
			}
		}
		peers[p[0]] = append(peers[p[0]], c.ip(p[1]))
		peers[p[1]] = append(peers[p[1]], c.ip(p[0]))
	}
	return c.eachNode(func(n string) error {
		if len(peers[n]) == 0 {
			_, err := c.run(ctx, "heal", n, sidecarCtr, healCmd(), nil, opTimeout)
			return err
		}
		_, err := c.run(ctx, "partition", n, sidecarCtr, nftApplyCmd(), strings.NewReader(nftRuleset(peers[n])), opTimeout)
		return err
	})
}

// Heal implements cluster.Cluster: the nftables table is deleted in every
// pod.
func (c *Cluster) Heal(ctx context.Context) error {
	return c.eachNode(func(n string) error {
		_, err := c.run(ctx, "heal", n, sidecarCtr, healCmd(), nil, opTimeout)
		return err
	})
}

// eachNode runs fn for every node at once and joins the errors in node
// order.
func (c *Cluster) eachNode(fn func(node string) error) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(n)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Follow implements cluster.Cluster: ALTER SYSTEM SET primary_conninfo and
// a reload, through psql on the standby's socket; then the pods' role
// labels say primary is the primary (the primary Service follows).
func (c *Cluster) Follow(ctx context.Context, standby, primary string) error {
	if err := c.check(primary); err != nil {
		return err
	}
	if _, err := c.run(ctx, "follow", standby, postgresCtr, followCmd(primaryConninfo(c.ip(primary), standby)), nil, opTimeout); err != nil {
		return err
	}
	return c.markPrimary(ctx, primary)
}

// Rejoin implements cluster.Cluster: stop cleanly, pg_rewind from primary
// (which the caller has checkpointed, see cluster.RejoinOld), write
// standby.signal and primary_conninfo, start and wait until it accepts
// connections.
func (c *Cluster) Rejoin(ctx context.Context, node, primary string) error {
	if err := c.check(primary); err != nil {
		return err
	}
	if err := c.Stop(ctx, node); err != nil {
		return fmt.Errorf("rejoin %s: %w", node, err)
	}
	if _, err := c.run(ctx, "rewind", node, postgresCtr, rewindCmd(c.ip(primary)), nil, c.opts.Timeout); err != nil {
		return fmt.Errorf("rejoin %s: %w", node, err)
	}
	if _, err := c.run(ctx, "configure standby", node, postgresCtr, standbyCmd(primaryConninfo(c.ip(primary), node)), nil, opTimeout); err != nil {
		return fmt.Errorf("rejoin %s: %w", node, err)
	}
	if err := c.Start(ctx, node); err != nil {
		return fmt.Errorf("rejoin %s: %w", node, err)
	}
	return c.markPrimary(ctx, primary)
}

// markPrimary sets LabelRole: primary on primary's pod, standby on the
// others, patching only the pods whose label changes.
func (c *Cluster) markPrimary(ctx context.Context, primary string) error {
	var errs []error
	for _, n := range c.nodes {
		want := cluster.Standby
		if n == primary {
			want = cluster.Primary
		}
		c.mu.Lock()
		same := c.roles[n] == want
		c.mu.Unlock()
		if same {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%q}}}`, LabelRole, want)
		if _, err := c.cs.CoreV1().Pods(c.ns()).Patch(ctx, podName(n), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			errs = append(errs, apiError("label", "pod", c.ns(), podName(n), err))
			continue
		}
		c.mu.Lock()
		c.roles[n] = want
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

// CollectLogs implements cluster.Cluster: every node's postgres container
// log (all restarts of postgres under the supervisor) to <dir>/<node>.log
// and its init container's log to <dir>/<node>-init.log.
func (c *Cluster) CollectLogs(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("collect logs: %w", err)
	}
	var errs []error
	for _, n := range c.nodes {
		for _, ctr := range []struct{ name, file string }{{postgresCtr, n + ".log"}, {initCtr, n + "-init.log"}} {
			raw, err := c.cs.CoreV1().Pods(c.ns()).GetLogs(podName(n), &corev1.PodLogOptions{Container: ctr.name}).DoRaw(ctx)
			if err != nil {
				errs = append(errs, apiError("get logs of", "pod", c.ns(), podName(n)+" container "+ctr.name, err))
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, ctr.file), raw, 0o644); err != nil {
				errs = append(errs, fmt.Errorf("collect logs: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// Status implements cluster.Cluster.
func (c *Cluster) Status(node string) cluster.Role {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.status[node]; ok {
		return r
	}
	return cluster.Unknown
}

// Close implements cluster.Cluster: it stops the port-forwards and deletes
// every object labelled with this run, and the namespace when strongcheck
// created it. It is idempotent; after an error it may be called again.
func (c *Cluster) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	proxies := c.proxies
	c.proxies = map[string]*proxy{}
	c.mu.Unlock()
	for _, p := range proxies {
		p.close()
	}
	releaseClientGoErrors(c.errLog)
	_, err := deleteLabelled(ctx, c.cs, c.ns(), LabelManagedBy+"="+ManagedByValue+","+LabelRun+"="+c.opts.RunID, false, 0)
	if err == nil && c.ownsNS {
		err = deleteNamespace(ctx, c.cs, c.ns())
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

// Cleanup deletes what strongcheck created, found by label, also after a
// crashed run: pods, services, secrets and PVCs labelled
// LabelManagedBy=strongcheck (and LabelRun=run when run is not empty) in
// namespace ("" for every namespace), then the namespaces strongcheck
// created (those labelled the same way). It returns what it deleted, as
// "kind/namespace/name", sorted.
func Cleanup(ctx context.Context, cs kubernetes.Interface, namespace, run string) ([]string, error) {
	sel := LabelManagedBy + "=" + ManagedByValue
	if run != "" {
		sel += "," + LabelRun + "=" + run
	}
	removed, err := deleteLabelled(ctx, cs, namespace, sel, false, 0)
	if err != nil {
		return removed, err
	}
	nsl, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil && !apierrors.IsForbidden(err) {
		return removed, apiError("list", "namespace", "", "", err)
	}
	if err == nil {
		for _, ns := range nsl.Items {
			if namespace != "" && ns.Name != namespace {
				continue
			}
			if err := deleteNamespace(ctx, cs, ns.Name); err != nil {
				return removed, err
			}
			removed = append(removed, "namespace/"+ns.Name)
		}
	}
	sort.Strings(removed)
	return removed, nil
}

// Down is `strongcheck cluster down --backend k8s`: Cleanup of every run in
// opts.Namespace (every namespace when allNamespaces), with the client from
// opts.
func Down(ctx context.Context, opts Options, allNamespaces bool) ([]string, error) {
	opts = opts.withDefaults()
	cs := opts.Client
	if cs == nil {
		var err error
		if cs, _, err = Connect(ctx, opts); err != nil {
			return nil, err
		}
	}
	ns := opts.Namespace
	if allNamespaces {
		ns = ""
	}
	return Cleanup(ctx, cs, ns, "")
}

func deleteNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return apiError("delete", "namespace", "", name, err)
	}
	return nil
}

// deleteLabelled deletes the pods (at once: grace period 0), services,
// secrets and PVCs matching selector in namespace ("" for all), and with
// waitPods waits up to timeout until the pods are gone (their names are
// about to be reused).
func deleteLabelled(ctx context.Context, cs kubernetes.Interface, namespace, selector string, waitPods bool, timeout time.Duration) ([]string, error) {
	core := cs.CoreV1()
	lo := metav1.ListOptions{LabelSelector: selector}
	var removed []string
	var pods []corev1.Pod
	type item struct{ kind, ns, name string }
	var items []item
	pl, err := core.Pods(namespace).List(ctx, lo)
	if err != nil {
		return nil, apiError("list", "pod", namespace, "", err)
	}
	pods = pl.Items
	for _, p := range pl.Items {
		items = append(items, item{"pod", p.Namespace, p.Name})
	}
	sl, err := core.Services(namespace).List(ctx, lo)
	if err != nil {
		return nil, apiError("list", "service", namespace, "", err)
	}
	for _, s := range sl.Items {
		items = append(items, item{"service", s.Namespace, s.Name})
	}
	secl, err := core.Secrets(namespace).List(ctx, lo)
	if err != nil {
		return nil, apiError("list", "secret", namespace, "", err)
	}
	for _, s := range secl.Items {
		items = append(items, item{"secret", s.Namespace, s.Name})
	}
	pvcl, err := core.PersistentVolumeClaims(namespace).List(ctx, lo)
	if err != nil {
		return nil, apiError("list", "persistentvolumeclaim", namespace, "", err)
	}
	for _, p := range pvcl.Items {
		items = append(items, item{"persistentvolumeclaim", p.Namespace, p.Name})
	}
	now := metav1.DeleteOptions{GracePeriodSeconds: ptr(int64(0))}
	for _, it := range items {
		var err error
		switch it.kind {
		case "pod":
			err = core.Pods(it.ns).Delete(ctx, it.name, now)
		case "service":
			err = core.Services(it.ns).Delete(ctx, it.name, metav1.DeleteOptions{})
		case "secret":
			err = core.Secrets(it.ns).Delete(ctx, it.name, metav1.DeleteOptions{})
		case "persistentvolumeclaim":
			err = core.PersistentVolumeClaims(it.ns).Delete(ctx, it.name, metav1.DeleteOptions{})
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return removed, apiError("delete", it.kind, it.ns, it.name, err)
		}
		removed = append(removed, it.kind+"/"+it.ns+"/"+it.name)
	}
	if waitPods {
		end := time.Now().Add(timeout)
		for _, p := range pods {
			for {
				_, err := core.Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
				if apierrors.IsNotFound(err) {
					break
				}
				if time.Now().After(end) {
					return removed, fmt.Errorf("%w: pod %s/%s of an earlier run still present after %s", ErrKubernetes, p.Namespace, p.Name, timeout)
				}
				if err := sleep(ctx, 500*time.Millisecond); err != nil {
					return removed, err
				}
			}
		}
	}
	return removed, nil
}
