#!/usr/bin/env bash
# Tears down what up.sh started, in order, and removes $K8S_ROOT: the pods
# (through the kubelet while it runs, so that the CNI plugin releases their
# network namespaces and veths), then the kubelet, any task left under its
# shim, containerd, the control plane, mounts below $K8S_ROOT, the bridge. It signals only processes whose PID was
# recorded by up.sh and whose command line still names $K8S_ROOT, and shims
# started by this cluster's containerd. Idempotent; safe after a crash.
source "$(dirname "$0")/lib.sh"

# ours PID: the process exists and was started for this cluster.
ours() {
	local pid=$1
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$K8S_ROOT"
}

# stop NAME: SIGTERM, up to 15 s, then SIGKILL of the recorded process and
# its process group (up.sh starts each daemon with setsid, so the group is
# the daemon and, for a supervised one, its supervisor loop).
stop() {
	local name=$1 pid i
	pid=$(cat "$PIDS/$name" 2>/dev/null) || return 0
	if ours "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 75; i++)); do
			if ! ours "$pid" && group_gone "$pid"; then break; fi
			sleep 0.2
		done
		if ours "$pid" || ! group_gone "$pid"; then
			log "$name (pid $pid) did not stop on SIGTERM; SIGKILL"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			sleep 0.2
		fi
	fi
	rm -f "$PIDS/$name"
	log "stopped $name"
}

# group_gone PGID: no process of the group is left.
group_gone() { [ -z "$(pgrep -g "$1" 2>/dev/null)" ]; }

# shims lists the PIDs of containerd shims serving this cluster's containerd.
shims() {
	local p
	for p in /proc/[0-9]*; do
		[ -r "$p/cmdline" ] || continue
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q "^/usr/bin/containerd-shim.* -address $CONTAINERD_SOCK "; then
			echo "${p#/proc/}"
		fi
	done
}

alive() { ours "$(cat "$PIDS/$1" 2>/dev/null)"; }

# delete_pods asks the cluster to remove every pod and waits until the
# runtime has no task left (the kubelet stops each sandbox through CRI,
# which runs the CNI DEL).
delete_pods() {
	alive kube-apiserver && alive kubelet && alive containerd || return 0
	kubectl_ delete namespaces -l app.kubernetes.io/managed-by=strongcheck --wait=false >/dev/null 2>&1 || true
	kubectl_ delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
	local i
	for ((i = 0; i < 150; i++)); do
		[ -z "$(ctr_ tasks ls -q 2>/dev/null)" ] && { log "pods deleted"; return 0; }
		sleep 0.2
	done
	log "pods still running after 30 s; killing their tasks"
}

# kill_tasks removes what the kubelet left: tasks, containers, sandboxes.
kill_tasks() {
	alive containerd || return 0
	local id
	for id in $(ctr_ tasks ls -q 2>/dev/null); do
		ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
	done
	for id in $(ctr_ tasks ls -q 2>/dev/null); do
		ctr_ tasks delete --force "$id" >/dev/null 2>&1 || true
	done
	for id in $(ctr_ containers ls -q 2>/dev/null); do
		ctr_ containers delete "$id" >/dev/null 2>&1 || true
	done
}

unmount_all() {
	local m
	findmnt -rn -o TARGET | awk -v d="$K8S_ROOT/" 'index($0, d) == 1' | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
	done
}

# remove_outside removes the folders outside $K8S_ROOT that up.sh found
# missing before the cluster made them (a cgroup folder with the pods'
# empty cgroups in it), each only when empty.
remove_outside() {
	local d
	[ -r "$K8S_ROOT/outside" ] || return 0
	while read -r d; do
		case "$d" in
		/sys/fs/cgroup/*/k8s.io) find "$d" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true ;;
		esac
		rmdir "$d" 2>/dev/null || true
	done <"$K8S_ROOT/outside"
}

main() {
	need_root
	[ -e "$K8S_ROOT" ] || [ -e "/sys/class/net/$BRIDGE" ] || return 0
	log "tearing down the local Kubernetes in $K8S_ROOT"
	delete_pods
	stop kubelet
	kill_tasks
	stop containerd
	local pid
	for pid in $(shims); do
		log "killing shim $pid left by this cluster's containerd"
		kill -KILL "$pid" 2>/dev/null || true
	done
	stop kube-scheduler
	stop kube-controller-manager
	stop kube-apiserver
	stop etcd
	unmount_all
	ip link del "$BRIDGE" 2>/dev/null || true
	# The kubelet links container logs into /var/log/containers (a fixed
	# path); remove the links into this cluster's pod logs.
	find /var/log/containers -maxdepth 1 -type l -lname "$K8S_ROOT/*" -delete 2>/dev/null || true
	remove_outside
	rm -rf "$K8S_ROOT"
	log "torn down"
}

main "$@"
