#!/usr/bin/env bash
# Builds, or reuses from $K8S_CACHE, what the local Kubernetes needs:
#   binaries  kube-apiserver, kube-controller-manager, kube-scheduler,
#             kubelet, kubectl (k8s.io/kubernetes $K8S_VERSION, from the
#             tools/k8s module) and the sandbox binary "pause";
#   images    docker-archive tarballs of a Debian PostgreSQL 15 image, a
#             fault-sidecar image (sh, nft) and the pause image, built with
#             debootstrap from Debian's packages.
# Usage: build.sh [binaries|images|all] (default all). Prints nothing on
# stdout; says on stderr what it built or reused and how long it took.
source "$(dirname "$0")/lib.sh"

# build_binaries builds into a temporary folder and renames it into place,
# so an interrupted build never leaves a half-filled cache entry.
build_binaries() {
	local dir tmp t0 ldflags
	dir=$(bin_dir)
	if [ -x "$dir/kubelet" ] && [ -x "$dir/kube-apiserver" ] && [ -x "$dir/kube-controller-manager" ] &&
		[ -x "$dir/kube-scheduler" ] && [ -x "$dir/kubectl" ] && [ -x "$dir/pause" ]; then
		log "Kubernetes $K8S_VERSION binaries: reusing $dir"
		return 0
	fi
	mkdir -p "$K8S_CACHE"
	tmp=$(mktemp -d "$K8S_CACHE/.build.XXXXXX")
	BUILD_TMP=$tmp
	t0=$SECONDS
	log "building Kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kubectl) into $dir; about 5 minutes on 2 idle cores"
	ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
	ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=34"
	ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
	(cd "$K8S_REPO/tools/k8s" && nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$tmp/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl) ||
		die "go build of Kubernetes $K8S_VERSION failed (tools/k8s)"
	(cd "$K8S_REPO/tools/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/pause" ./pause) ||
		die "go build of the pause binary failed"
	rm -rf "$dir"
	mv "$tmp" "$dir"
	BUILD_TMP=
	log "built the Kubernetes binaries in $((SECONDS - t0)) s"
}

# image_key hashes what the images are made of: the functions that build
# them, the suite, the image names and the pause binary.
image_key() {
	(declare -f debootstrap_rootfs pack_image build_images &&
		echo "$DEBIAN_SUITE $DEBIAN_MIRROR $IMAGE_POSTGRES $IMAGE_FAULTS $IMAGE_PAUSE" &&
		sha256sum <"$(bin_dir)/pause") | sha256sum | cut -c1-12
}

# debootstrap_rootfs DIR PACKAGES: a minimal Debian with PACKAGES. While it
# installs, debootstrap itself puts a policy-rc.d that forbids starting
# services (postgresql's postinst would otherwise start a server) and
# mounts /proc and /sys in DIR; unmount_under cleans up after a failure.
debootstrap_rootfs() {
	local dir=$1 pkgs=$2
	mkdir -p "$K8S_CACHE/debs"
	if ! debootstrap --variant=minbase --include="$pkgs" --cache-dir="$K8S_CACHE/debs" \
		"$DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR" >"$dir.log" 2>&1; then
		tail -n 20 "$dir.log" >&2
		die "debootstrap of $pkgs failed (log above; it needs Debian's mirror $DEBIAN_MIRROR)"
	fi
	rm -rf "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/* \
		"$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/var/log/* "$dir"/dev/*
}

# unmount_under DIR unmounts whatever is mounted below DIR, deepest first.
unmount_under() {
	local m
	findmnt -rn -o TARGET | awk -v d="$1/" 'index($0, d) == 1' | sort -r | while read -r m; do
		umount "$m" 2>/dev/null || umount -l "$m" || true
	done
}

# pack_image ROOTFS NAME CONFIG OUT: a docker-archive tarball of one layer
# (what `ctr images import` accepts). CONFIG is the image config's
# "config" object (JSON).
pack_image() {
	local rootfs=$1 name=$2 cfg=$3 out=$4 work diff
	work=$(mktemp -d "$out.XXXXXX")
	tar -C "$rootfs" --numeric-owner --xattrs -cf "$work/layer.tar" .
	diff=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
	printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}\n' \
		"$cfg" "$diff" >"$work/config.json"
	printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]\n' "$name" >"$work/manifest.json"
	tar -C "$work" -cf "$out.tmp" manifest.json config.json layer.tar
	mv "$out.tmp" "$out"
	rm -rf "$work"
}

build_images() {
	local dir tmp t0 uid
	dir=$K8S_CACHE/images/$(image_key)
	if [ -s "$dir/postgres.tar" ] && [ -s "$dir/faults.tar" ] && [ -s "$dir/pause.tar" ] && [ -s "$dir/postgres.uid" ]; then
		log "images: reusing $dir (postgres uid $(cat "$dir/postgres.uid"))"
		return 0
	fi
	mkdir -p "$K8S_CACHE/images"
	tmp=$(mktemp -d "$K8S_CACHE/images/.build.XXXXXX")
	BUILD_TMP=$tmp
	t0=$SECONDS
	path='"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]'

	log "building image $IMAGE_POSTGRES (debootstrap $DEBIAN_SUITE + postgresql-15)"
	debootstrap_rootfs "$tmp/postgres" postgresql-15
	# postgresql-15's postinst created a "main" cluster; the pods make their own.
	rm -rf "$tmp/postgres/var/lib/postgresql/15/main" "$tmp/postgres/etc/postgresql/15"
	uid=$(awk -F: '$1 == "postgres" { print $3 }' "$tmp/postgres/etc/passwd")
	[ -n "$uid" ] || die "the postgres image has no postgres user"
	[ -x "$tmp/postgres/usr/lib/postgresql/15/bin/postgres" ] || die "the postgres image has no /usr/lib/postgresql/15/bin/postgres"
	pack_image "$tmp/postgres" "$IMAGE_POSTGRES" "{$path,\"Cmd\":[\"bash\"]}" "$tmp/postgres.tar"
	echo "$uid" >"$tmp/postgres.uid"
	rm -rf "$tmp/postgres"

	log "building image $IMAGE_FAULTS (debootstrap $DEBIAN_SUITE + nftables)"
	debootstrap_rootfs "$tmp/faults" nftables
	pack_image "$tmp/faults" "$IMAGE_FAULTS" "{$path,\"Cmd\":[\"sh\"]}" "$tmp/faults.tar"
	rm -rf "$tmp/faults"

	mkdir -p "$tmp/pause"
	cp "$(bin_dir)/pause" "$tmp/pause/pause"
	pack_image "$tmp/pause" "$IMAGE_PAUSE" '{"Entrypoint":["/pause"]}' "$tmp/pause.tar"
	rm -rf "$tmp/pause" "$tmp"/*.log

	rm -rf "$dir"
	mv "$tmp" "$dir"
	BUILD_TMP=
	log "built the images in $((SECONDS - t0)) s (postgres uid $uid)"
}

# image_dir prints the cached images' folder (after build_images).
image_dir() { echo "$K8S_CACHE/images/$(image_key)"; }

# An interrupted or failed build leaves no temporary folder or mount.
BUILD_TMP=
cleanup_build() {
	if [ -n "$BUILD_TMP" ]; then
		unmount_under "$BUILD_TMP"
		rm -rf "$BUILD_TMP"
	fi
}

main() {
	need_root
	trap cleanup_build EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$K8S_CACHE"
	# One build at a time per cache.
	exec 8>"$K8S_CACHE/.lock"
	flock 8
	case "${1:-all}" in
	binaries) build_binaries ;;
	images) build_binaries && build_images ;;
	all) build_binaries && build_images ;;
	image-dir) image_dir ;;
	*) die "usage: build.sh [binaries|images|all|image-dir]" ;;
	esac
}

main "$@"
