# shellcheck shell=bash
# Shared settings and helpers of the local single-node Kubernetes that
# `make e2e-k8s` assembles (see README.md, "Kubernetes"). Sourced by the
# other scripts of this folder; nothing here starts anything.
#
# Everything the cluster writes lives under $K8S_ROOT (configuration,
# certificates, sockets, etcd and containerd data, CNI configuration and
# IPAM state, kubelet root, pod logs) and is deleted by down.sh. What is
# built once and reused lives under $K8S_CACHE, keyed by what it was built
# from. The machine's /etc, /var/lib/kubelet, /var/lib/cni/networks and
# default sockets such as /run/containerd/containerd.sock are not used.

set -euo pipefail

K8S_VERSION=v1.34.4
K8S_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
K8S_ROOT=${STRONGCHECK_K8S_ROOT:-/var/lib/strongcheck-k8s}
K8S_CACHE=${STRONGCHECK_K8S_CACHE:-/var/cache/strongcheck/k8s}
K8S_LOCK=$K8S_ROOT.lock
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${STRONGCHECK_DEBIAN_MIRROR:-http://deb.debian.org/debian}

# Addresses exist only on the bridge this cluster creates: the pods' subnet
# and its gateway, which is also the node's address (the kubelet refuses a
# loopback node IP). Ports are uncommon ones so
# that a machine's own etcd or kubelet is not disturbed.
NODE_NAME=sck8s
BRIDGE=sck8s0
POD_CIDR=10.234.0.0/24
NODE_IP=10.234.0.1
SERVICE_CIDR=10.235.0.0/24
ETCD_PORT=23790
ETCD_PEER_PORT=23800
API_PORT=16443
KUBELET_PORT=10350

ETC=$K8S_ROOT/etc
PKI=$K8S_ROOT/pki
RUN=$K8S_ROOT/run
LOGS=$K8S_ROOT/logs
PIDS=$K8S_ROOT/pids
CONTAINERD_SOCK=$RUN/containerd.sock
KUBECONFIG_ADMIN=$ETC/admin.kubeconfig

# Images: built from Debian's packages, imported into containerd's k8s.io
# namespace, used with imagePullPolicy Never.
IMAGE_POSTGRES=strongcheck.local/postgres:15
IMAGE_FAULTS=strongcheck.local/faults:1
IMAGE_PAUSE=strongcheck.local/pause:1

log() { printf '%s e2e-k8s: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# bin_dir is where the Kubernetes binaries of this checkout's tools/k8s
# module are cached: keyed by the version and a hash of the module's files
# and the Go version, so that a change of either rebuilds.
bin_dir() {
	local h
	h=$( (cd "$K8S_REPO/tools/k8s" && cat go.mod go.sum pause/main.go && go version) | sha256sum | cut -c1-12)
	echo "$K8S_CACHE/$K8S_VERSION-$h"
}

# need_root says plainly that the target needs root.
need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (it starts containerd, the kubelet and network namespaces)"
}

# install_deps installs the Debian packages the local cluster needs when
# missing, and says what is missing where it cannot.
install_deps() {
	local missing=() p
	command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
	command -v containerd >/dev/null 2>&1 || missing+=(containerd)
	command -v ctr >/dev/null 2>&1 || missing+=(containerd)
	[ -x /usr/sbin/runc ] || [ -x /usr/bin/runc ] || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
	command -v openssl >/dev/null 2>&1 || missing+=(openssl)
	command -v ip >/dev/null 2>&1 || missing+=(iproute2)
	command -v curl >/dev/null 2>&1 || missing+=(curl)
	command -v findmnt >/dev/null 2>&1 || missing+=(util-linux)
	command -v flock >/dev/null 2>&1 || missing+=(util-linux)
	command -v go >/dev/null 2>&1 || die "go is not on PATH (the Kubernetes binaries are built from Go modules; CI puts /usr/local/go/bin on PATH)"
	[ ${#missing[@]} -eq 0 ] && return 0
	mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
	command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get: install Debian's (or your distribution's) ${missing[*]} by hand"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
	for p in etcd containerd ctr debootstrap; do
		command -v "$p" >/dev/null 2>&1 || die "$p still missing after installing ${missing[*]}"
	done
}

# kubectl_ runs the cached kubectl as the cluster's admin.
kubectl_() { "$(bin_dir)/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ctr_ runs ctr against this cluster's containerd, in the CRI namespace.
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
