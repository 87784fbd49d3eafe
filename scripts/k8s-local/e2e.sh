#!/usr/bin/env bash
# `make e2e-k8s`: the Kubernetes backend on a real single-node Kubernetes
# assembled on this machine. It installs what is missing, builds (or
# reuses) the Kubernetes binaries and the images, brings the cluster up,
# runs TestIntegrationK8sLocal (the assertions of TestIntegrationKind) and a
# short `strongcheck test --backend k8s` whose stored run must show kills,
# partitions and failovers made through Kubernetes, then the list-append
# workload through a kill (valid) and through stall-commit (a long fork:
# invalid), and tears everything
# down — also when interrupted — then checks that nothing is left.
# Environment: STRONGCHECK_K8S_TIME_LIMIT (default 25s) is the length of
# the register and list-append runs. Their faults do not depend on a
# seed: each asks for them with --sequence (a partition, a kill of the
# primary n1, a promotion, n1's rejoin, another partition), and the run
# goes past its time limit (--overrun) until the sequence has finished,
# however long its steps take on this machine. STRONGCHECK_K8S_STORE
# (default $K8S_ROOT.store, kept) is their store.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
STORE=${STRONGCHECK_K8S_STORE:-$K8S_ROOT.store}
TIME_LIMIT=${STRONGCHECK_K8S_TIME_LIMIT:-25s}

# snapshot lists the CNI's network namespaces in /run/netns, the bridges
# this cluster or a default CNI setup would create and the folders the
# runtime makes outside $K8S_ROOT, to tell at the end whether this run left
# one (other people's tests make namespaces and
# bridges of their own on this machine at the same time).
snapshot() {
	{
		ls /run/netns 2>/dev/null | grep '^cni-' || true
		ip -o link show type bridge 2>/dev/null | awk -F': ' '{print $2}' | grep -xE "$BRIDGE|cni0" || true
		ls -d /run/containerd/s /run/containerd /var/lib/cni /var/log/containers /sys/fs/cgroup/*/k8s.io 2>/dev/null || true
	} | sort
}

teardown() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -e "$K8S_ROOT/logs" ] && [ "$rc" != 0 ]; then
		# Keep the daemons' logs of a failed run for the reader.
		rm -rf "$K8S_ROOT.logs"
		cp -r "$K8S_ROOT/logs" "$K8S_ROOT.logs" 2>/dev/null && log "daemon logs kept in $K8S_ROOT.logs"
	fi
	"$HERE/down.sh" || rc=1
	check_clean || rc=1
	exit "$rc"
}

# check_clean fails when anything of this cluster is left running.
check_clean() {
	local left=() p
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF "$K8S_ROOT/"; then
			left+=("process ${p#/proc/}: $(tr '\0' ' ' 2>/dev/null <"$p/cmdline" | cut -c1-100)")
		fi
	done
	findmnt -rn -o TARGET | grep -qF "$K8S_ROOT/" && left+=("mounts under $K8S_ROOT")
	[ -e "$K8S_ROOT" ] && left+=("folder $K8S_ROOT")
	local new
	new=$(comm -13 <(echo "$BEFORE") <(snapshot) | tr '\n' ' ')
	[ -n "$new" ] && left+=("network namespaces, bridges or folders: $new")
	if [ ${#left[@]} -gt 0 ]; then
		log "LEFT BEHIND: ${left[*]}"
		return 1
	fi
	log "nothing left running: no daemon, shim, task, mount, network namespace or bridge of this cluster"
}

# check_run reads the stored run: it must have been made on k8s, and its
# history must hold a kill of the primary, a failover that promoted
# another node, a rejoin with pg_rewind and a partition, each completed
# (an "ok" line of the nemesis), and the report must show them.
check_run() {
	local run=$1 h f
	h=$run/history.jsonl
	[ -s "$h" ] || die "the stored run $run has no history"
	grep -q '"backend": *"k8s"' "$run/test.json" || die "the stored run $run was not made on the k8s backend"
	for f in kill promote rejoin partition heal; do
		grep -q "\"process\":\"nemesis\",\"type\":\"ok\",\"f\":\"$f\"" "$h" ||
			die "the stored run's history has no completed $f ($h)"
	done
	grep -q '"type":"ok","f":"promote".*"primary":"n[23]"' "$h" || die "the stored run's promote step promoted no standby ($h)"
	for f in report.html summary.md results.json junit.xml; do
		[ -s "$run/$f" ] || die "the stored run has no $f"
	done
	for f in kill partition promote; do
		grep -q "$f" "$run/report.html" || die "report.html does not show $f"
	done
	log "stored run $run: $(extension "$run")"
	log "stored run $run: completed nemesis steps: $(grep -o '"process":"nemesis","type":"ok","f":"[a-z-]*"' "$h" | cut -d'"' -f12 | sort | uniq -c | tr -s ' \n' ' ')"
	log "promoted: $(grep '"type":"ok","f":"promote"' "$h" | grep -o '"primary":"[a-z0-9_]*"' | paste -sd ';' -)"
}

# extension says how far a stored run went past its time limit to finish
# its planned faults (test.json's extended_ns).
extension() {
	local ns
	ns=$(grep -o '"extended_ns": *[0-9]*' "$1/test.json" | grep -o '[0-9]*$' || true)
	if [ -n "$ns" ]; then
		echo "went $((ns / 1000000)) ms past its time limit to finish its planned faults"
	else
		echo "ended at its time limit"
	fi
}

# k8s_test runs `strongcheck test` on this cluster with the images built
# here and the postgres uid $1, in namespace $2, storing in $STORE, with
# the flags after them; it returns strongcheck's exit code.
k8s_test() {
	local uid=$1 ns=$2
	shift 2
	./bin/strongcheck test --backend k8s --seed 6 --kubeconfig "$KUBECONFIG_ADMIN" --image "$IMAGE_POSTGRES" \
		--sidecar-image "$IMAGE_FAULTS" --postgres-uid "$uid" --image-pull-policy Never \
		--namespace "$ns" --store "$STORE" "$@"
}

# append_run runs the list-append workload through the backend: repeatable
# read on the primary through a partition and a kill of the primary, which
# snapshot isolation must survive (valid), and checks that the stored run
# holds acknowledged transactions and the list-append check's judgement.
append_run() {
	local uid=$1 code=0 t=$SECONDS run h
	k8s_test "$uid" strongcheck-e2e-append --workload append --isolation repeatable-read --read-from primary \
		--sequence 'kill n1; promote; wait 3s; rejoin n1; wait 2s; partition n3; wait 3s; heal' --nemesis-interval 8s --time-limit "$TIME_LIMIT" || code=$?
	log "strongcheck test --backend k8s --workload append took $((SECONDS - t)) s, exit $code"
	[ "$code" = 0 ] || die "list-append at repeatable read on the primary: exit $code, want valid: see $STORE/latest/report.html"
	run=$(readlink -f "$STORE/latest")
	h=$run/history.jsonl
	grep -q '"type":"ok","f":"txn"' "$h" || die "the list-append run has no acknowledged transaction ($h)"
	grep -q '"process":"nemesis","type":"ok","f":"kill"' "$h" || die "the list-append run has no completed kill ($h)"
	grep -q '"list-append"' "$run/results.json" || die "the list-append run has no list-append check ($run/results.json)"
	log "list-append run $run: $(grep -c '"type":"ok","f":"txn"' "$h") acknowledged transactions, valid; $(extension "$run")"
}

# longfork_run is the long-fork scenario through the backend: readers on
# every pod read every key at repeatable read while stall-commit stops
# backends of the primary's pod inside their commit's wait (through the
# postgres container). Three stalls are planned (one every 6 s in 20 s):
# a stall step takes about 9 s here (its health checks go through the
# kubelet), so a denser plan would outrun the overrun allowance and end
# unknown, as one every 2 s did (9 struck, the 10th not). The run must be invalid by a G-nonadjacent, with
# completed stall-commit steps and every fault verified.
longfork_run() {
	local uid=$1 code=0 t=$SECONDS run h
	k8s_test "$uid" strongcheck-e2e-longfork --workload append --isolation repeatable-read --read-from any \
		--read-all-keys --concurrency 20 --nemesis stall-commit --nemesis-interval 6s --time-limit 20s || code=$?
	log "strongcheck test --backend k8s --nemesis stall-commit took $((SECONDS - t)) s, exit $code"
	[ "$code" = 1 ] || die "long fork through stall-commit: exit $code, want 1 (invalid): see $STORE/latest/report.html"
	run=$(readlink -f "$STORE/latest")
	h=$run/history.jsonl
	grep -q '"process":"nemesis","type":"ok","f":"stall-commit"' "$h" || die "the long-fork run has no completed stall-commit ($h)"
	grep -q '| faults | ✅ valid |' "$run/summary.md" || die "a stall-commit step of the long-fork run did not take effect ($run/summary.md)"
	grep -q '"G-nonadjacent"' "$run/results.json" || die "the long-fork run found no G-nonadjacent ($run/results.json)"
	log "long-fork run $run: $(grep -c '"process":"nemesis","type":"ok","f":"stall-commit"' "$h") stall-commit steps, $(grep -o 'rules out guide: [0-9]* G-nonadjacent' "$run/summary.md" | head -1)"
}

main() {
	need_root
	local t0=$SECONDS
	install_deps
	mkdir -p "$(dirname "$K8S_LOCK")"
	exec 9>"$K8S_LOCK"
	flock -n 9 || die "another make e2e-k8s is running on this machine (lock $K8S_LOCK)"
	# Leftovers of an earlier run that crashed go first.
	"$HERE/down.sh"
	BEFORE=$(snapshot)
	trap teardown EXIT
	trap 'log "interrupted"; exit 130' INT TERM

	"$HERE/build.sh" all
	local images uid
	images=$("$HERE/build.sh" image-dir)
	uid=$(cat "$images/postgres.uid")
	local tb=$SECONDS
	"$HERE/up.sh"
	log "build and bring-up took $((SECONDS - t0)) s (bring-up $((SECONDS - tb)) s)"

	cd "$K8S_REPO"
	local t1=$SECONDS
	STRONGCHECK_E2E_K8S_LOCAL=1 KUBECONFIG=$KUBECONFIG_ADMIN STRONGCHECK_E2E_IMAGE=$IMAGE_POSTGRES \
		STRONGCHECK_E2E_SIDECAR_IMAGE=$IMAGE_FAULTS STRONGCHECK_E2E_POSTGRES_UID=$uid STRONGCHECK_E2E_PULL_POLICY=Never \
		go test -count=1 -v -timeout 15m -run '^TestIntegrationK8sLocal$' ./cluster/k8s/
	log "TestIntegrationK8sLocal took $((SECONDS - t1)) s"

	local t2=$SECONDS code=0
	rm -rf "$STORE"
	mkdir -p "$STORE"
	# The sequence asks for both kinds of fault, and for the failover
	# (the standby known to hold every acknowledged commit) and the rejoin.
	k8s_test "$uid" strongcheck-e2e-run --workload register --read-from primary \
		--sequence 'partition n3; wait 3s; heal; wait 2s; kill n1; promote; wait 3s; rejoin n1; wait 2s; partition n2; wait 3s; heal' --nemesis-interval 8s --time-limit "$TIME_LIMIT" || code=$?
	log "strongcheck test --backend k8s took $((SECONDS - t2)) s, exit $code"
	case $code in
	0) log "verdict: valid" ;;
	1) die "verdict: invalid on primary reads with ANY 2 and auto failover: see $STORE/latest/report.html" ;;
	2) die "verdict: unknown (a check could not decide): see $STORE/latest/report.html" ;;
	*) die "strongcheck test --backend k8s failed (exit $code)" ;;
	esac
	check_run "$(readlink -f "$STORE/latest")"
	append_run "$uid"
	longfork_run "$uid"
	log "e2e-k8s passed in $((SECONDS - t0)) s"
}

main "$@"
