#!/usr/bin/env bash
# Brings up the single-node Kubernetes under $K8S_ROOT: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd (with Debian's runc),
# the kubelet and a CNI bridge, imports the images and waits until the node
# is Ready. Needs build.sh to have run. Every daemon runs in a session of
# its own (an interrupt reaches the caller's trap, which tears down in
# order) and its PID is recorded in $K8S_ROOT/pids for down.sh.
source "$(dirname "$0")/lib.sh"

BIN=$(bin_dir)
IMAGES=$("$(dirname "$0")/build.sh" image-dir)

# start NAME CMD...: runs CMD in its own session, logging to $LOGS/NAME.log.
start() {
	local name=$1
	shift
	setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$PIDS/$name"
}

# start_supervised NAME CMD...: start, with CMD started again a second after
# it exits, as systemd's Restart=always does for a kubeadm node's kubelet.
# Kubernetes 1.34.4's kubelet can crash (a nil pointer in
# doPodResizeAction, seen here while a namespace whose container had just
# been restarted was deleted); a real node's comes back, and so does this
# one, and its log says so. The recorded PID leads the process group that
# down.sh stops.
start_supervised() {
	local name=$1
	shift
	setsid bash -c 'while :; do "$@"; echo "supervisor: $1 exited with status $?; starting it again in 1 s" >&2; sleep 1; done' \
		supervise "$@" >"$LOGS/$name.log" 2>&1 </dev/null &
	echo $! >"$PIDS/$name"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds.
wait_for() {
	local what=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	log "$what not ready after $secs s; the end of its log:"
	tail -n 30 "$LOGS/$what.log" >&2 2>/dev/null || true
	die "$what did not come up"
}

# cert NAME SUBJECT EXT: a key and a certificate signed by the cluster's CA.
cert() {
	local name=$1 subj=$2 ext=$3
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj" 2>/dev/null
	openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
		-days 2 -out "$PKI/$name.crt" -extfile <(printf '%s\n' "$ext") 2>/dev/null
	rm -f "$PKI/$name.csr"
}

certificates() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=strongcheck-e2e-k8s-ca" 2>/dev/null
	local client="keyUsage=critical,digitalSignature extendedKeyUsage=clientAuth"
	cert apiserver "/CN=kube-apiserver" "keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:${SERVICE_CIDR%0/24}1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
	cert admin "/O=system:masters/CN=strongcheck-admin" "${client// /$'\n'}"
	cert apiserver-kubelet "/O=system:masters/CN=kube-apiserver-kubelet-client" "${client// /$'\n'}"
	cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "${client// /$'\n'}"
	cert controller-manager "/CN=system:kube-controller-manager" "${client// /$'\n'}"
	cert scheduler "/CN=system:kube-scheduler" "${client// /$'\n'}"
	openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key"
	openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
}

# kubeconfig NAME: a kubeconfig for the client certificate NAME.
kubeconfig() {
	cat >"$ETC/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: $1
  user:
    client-certificate: $PKI/$1.crt
    client-key: $PKI/$1.key
contexts:
- name: local
  context: {cluster: local, user: $1}
current-context: local
EOF
}

network() {
	# The node's address is the pods' gateway on the bridge, created here
	# (this kernel has no dummy interfaces); the CNI bridge plugin adopts
	# the bridge as long as it has no other address.
	ip link add "$BRIDGE" type bridge
	ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
	ip link set "$BRIDGE" up
	mkdir -p "$K8S_ROOT/cni/net.d" "$K8S_ROOT/cni/ipam"
	# No masquerade and no default route out: pods reach only each other
	# and the node (the kubelet's probes, exec and port-forward go through
	# the runtime, not through this network).
	cat >"$K8S_ROOT/cni/net.d/10-strongcheck.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "strongcheck-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$K8S_ROOT/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]]
      }
    },
    {"type": "loopback"}
  ]
}
EOF
}

control_plane() {
	start etcd etcd --name default --data-dir "$K8S_ROOT/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --listen-metrics-urls ""
	wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
	start kube-apiserver "$BIN/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
		--bind-address 127.0.0.1 --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
		--cert-dir "$PKI/apiserver-certs" --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
		--client-ca-file "$PKI/ca.crt" --service-cluster-ip-range "$SERVICE_CIDR" \
		--service-account-issuer https://kubernetes.default.svc --service-account-key-file "$PKI/sa.pub" \
		--service-account-signing-key-file "$PKI/sa.key" --authorization-mode Node,RBAC \
		--kubelet-client-certificate "$PKI/apiserver-kubelet.crt" --kubelet-client-key "$PKI/apiserver-kubelet.key" \
		--kubelet-preferred-address-types InternalIP --profiling=false
	wait_for kube-apiserver 120 curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
		"https://127.0.0.1:$API_PORT/readyz"
	start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig "$ETC/controller-manager.kubeconfig" \
		--service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
		--use-service-account-credentials --leader-elect=false --secure-port 0 --profiling=false
	start kube-scheduler "$BIN/kube-scheduler" --kubeconfig "$ETC/scheduler.kubeconfig" \
		--leader-elect=false --secure-port 0 --profiling=false
}

runtime() {
	local runc
	runc=$(command -v runc)
	cat >"$ETC/containerd.toml" <<EOF
version = 2
root = "$K8S_ROOT/containerd/root"
state = "$K8S_ROOT/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$RUN/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$K8S_ROOT/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMAGE_PAUSE"
  # A negative OOM score adjustment (the sandbox's -998) is refused on this
  # kind of host and makes runc create fail (FIELD-NOTES.md).
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$runc"
        Root = "$K8S_ROOT/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$K8S_ROOT/cni/net.d"
EOF
	start containerd containerd --config "$ETC/containerd.toml"
	wait_for containerd 30 ctr_ version
	local img
	for img in pause postgres faults; do
		ctr_ images import "$IMAGES/$img.tar" >/dev/null || die "ctr images import $IMAGES/$img.tar failed"
	done
}

kubelet() {
	cat >"$ETC/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Kubernetes 1.34 still runs on a cgroup v1 host when told so.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzPort: 0
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $K8S_ROOT/pod-logs
volumePluginDir: $K8S_ROOT/kubelet/volume-plugins
makeIPTablesUtilChains: false
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
registerNode: true
EOF
	start_supervised kubelet "$BIN/kubelet" --config "$ETC/kubelet.yaml" --kubeconfig "$ETC/kubelet.kubeconfig" \
		--root-dir "$K8S_ROOT/kubelet" --cert-dir "$K8S_ROOT/kubelet/pki" \
		--hostname-override "$NODE_NAME" --node-ip "$NODE_IP"
	wait_for kubelet 120 kubectl_ get node "$NODE_NAME"
	kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >/dev/null ||
		{ tail -n 30 "$LOGS/kubelet.log" >&2; die "node $NODE_NAME not Ready"; }
	# The node controller removes the not-ready taint shortly after.
	wait_for kube-controller-manager 60 untainted
}

untainted() { [ -z "$(kubectl_ get node "$NODE_NAME" -o 'jsonpath={.spec.taints}')" ]; }

main() {
	need_root
	[ -x "$BIN/kubelet" ] || die "no Kubernetes binaries in $BIN: run build.sh first"
	[ ! -e "$K8S_ROOT" ] || die "$K8S_ROOT exists: run down.sh first"
	local t0=$SECONDS
	mkdir -p "$ETC" "$PKI" "$RUN" "$LOGS" "$PIDS" "$K8S_ROOT/pod-logs"
	# Paths outside $K8S_ROOT that containerd 1.6 (its shims' sockets),
	# the CNI library (its cache), the kubelet (its log links) and the
	# runtime (the pods' cgroups) create at fixed places: down.sh removes
	# those that did not exist before, once empty.
	local d
	for d in /run/containerd/s /run/containerd /var/lib/cni/results /var/lib/cni /var/log/containers; do
		[ -e "$d" ] || echo "$d" >>"$K8S_ROOT/outside"
	done
	for d in /sys/fs/cgroup/*/; do
		[ -e "${d}k8s.io" ] || echo "${d}k8s.io" >>"$K8S_ROOT/outside"
	done
	certificates
	for k in admin kubelet controller-manager scheduler; do kubeconfig "$k"; done
	network
	control_plane
	runtime
	kubelet
	log "single-node Kubernetes $K8S_VERSION up in $((SECONDS - t0)) s (kubeconfig $KUBECONFIG_ADMIN)"
}

main "$@"
