// Package k8s is the Kubernetes backend of strongcheck: the same
// cluster.Cluster as cluster/local, built with client-go in a namespace of
// the test's own, so that the very same workloads, faults and checks run on
// kind or on a real cluster.
//
// # What Up creates
//
// Every object carries LabelManagedBy=strongcheck and LabelRun=<run id>, so
// Close, Cleanup and `strongcheck cluster down --backend k8s` find them by
// label, also after a crashed run; Up itself deletes strongcheck objects of
// an earlier run left in its namespace. Objects: the namespace (when
// missing), a Secret with passwords drawn from crypto/rand per run, a
// headless Service "pg" (stable names <node>.pg.<namespace>.svc, published
// while not ready) and a Service "pg-primary" that follows LabelRole=primary,
// one PVC per node when a storage class is given, and one Pod per node.
//
// Pods are managed directly, not by a StatefulSet: roles are decided by the
// harness (the spec's first node starts as primary; Failover and Rejoin
// change roles), never by an ordinal, and nothing recreates a pod behind the
// harness's back. Each pod has
//   - an init container (the PostgreSQL image) that runs initdb and creates
//     the roles on the primary, or pg_basebackup with
//     application_name=<node> in the conninfo on a standby; the passwords
//     reach it from the Secret through the environment, never through
//     arguments;
//   - the postgres container, whose arguments are "-c name=value" for every
//     effective setting of the spec plus the node's own (cluster_name,
//     listen address, port, socket dir). synchronous_standby_names is the
//     exception: it goes to postgresql.auto.conf, because a command-line
//     value would override the ALTER SYSTEM that Failover uses;
//   - a readiness probe (pg_isready on the socket) and no liveness probe: a
//     liveness probe would restart a node the nemesis paused or killed;
//   - a sidecar "faults" (root, capability NET_ADMIN only) that applies the
//     nftables partitions in the pod's network namespace.
//
// The postgres and init containers run as Options.PostgresUID (default
// 999, the official image's postgres user; a Debian-built image has
// another), non-root, without privilege escalation, with every capability
// dropped and a read-only root filesystem (the data volume, the socket dir
// and /tmp are volumes). The scripts find the server binaries on PATH,
// under Options.PGBinDir, or under the newest /usr/lib/postgresql/*/bin.
// Commands, arguments, probes and environment values are escaped for the
// kubelet's $(VAR) expansion, so the containers run the scripts verbatim.
// The cluster-wide settings are on the command line and, from the
// primary's init container on, in postgresql.conf too, for the servers
// pg_rewind starts in single-user mode.
//
// # How faults are made
//
// The postgres container's command is a small bash supervisor (PID 1 of the
// container) that runs postgres while the control file "want" on the data
// volume says run. Kill writes stop and sends SIGKILL to the postmaster and
// all its children (PostgreSQL makes every child a process-group leader, so
// they are found by parent PID), then waits until they are reaped: a real
// crash, not a pod deletion (which would be a clean SIGINT/SIGTERM
// shutdown), and the pod, its IP and its data stay. Start writes run and
// waits for pg_isready; Stop writes stop and runs pg_ctl stop -m fast; the
// supervisor restarts a postgres that exits while "want" still says run.
// Pause and Resume send SIGSTOP and SIGCONT to the postmaster and its
// children.
//
// The signals are sent by an exec into the postgres container itself, not
// from the sidecar through shareProcessNamespace: the processes belong to
// the same uid, so no capability is needed, the sidecar keeps only
// NET_ADMIN, no container can read another's files or environment through
// /proc, and the supervisor stays PID 1 of its container, reaping the
// killed postmaster at once (a lingering zombie keeps postmaster.pid alive;
// see FIELD-NOTES.md).
//
// Partition writes, from each pod's sidecar, one table "inet strongcheck"
// that drops input from and output to the grudge's peer pod IPs (the same
// table and chain style as cluster/local), replaced atomically; Heal deletes
// the table. The harness's own traffic is never cut: port-forwards arrive on
// the pod's loopback, and in-cluster access comes from the harness's pod IP.
//
// Rejoin stops postgres cleanly, runs pg_rewind from the new primary (which
// cluster.RejoinOld has checkpointed), writes standby.signal and
// primary_conninfo (dropping synchronous_standby_names copied by pg_rewind)
// and starts postgres again, all inside the running pod. Follow runs ALTER
// SYSTEM SET primary_conninfo and pg_reload_conf() through psql on the
// standby's socket. Promotion, sync lists and state queries are SQL over
// ConnString and live in package cluster.
//
// # Inspection
//
// Reachable probes, from the postgres container of one pod (which shares
// the pod's network namespace and so the sidecar's nftables rules), a TCP
// connection to another pod's IP and port 5432 with bash's /dev/tcp under
// a one-second timeout; Processes reads /proc inside the postgres
// container for the postmaster and its children.
//
// # Exec and access
//
// Commands run through the Executor interface; RemoteExecutor uses
// client-go's remotecommand with the WebSocket executor and the SPDY
// executor as fallback. The harness connects by port-forward (default: one
// stable 127.0.0.1 port per node, whose tunnel is re-opened whenever
// client-go's port-forward drops it, e.g. after a connection refused by a
// killed node) or, with InCluster, directly to the pod IPs. client-go's
// errors that it cannot return (its port-forward's, mostly) go to
// Options.Logf rather than to stderr.
//
// # Errors
//
// Errors from the cluster (no kubeconfig, API server unreachable, RBAC
// forbidden, image pull back-off, failed init container, pod never ready)
// name the object and the reason and wrap ErrKubernetes; Up deletes what it
// created before returning one. Kind runs the kind binary and wraps
// ErrMissingTool when docker, a working engine or kind is missing.
package k8s
