package k8s

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Paths inside the pods. The data volume is mounted at dataMount; PGDATA is
// a sub-directory (a mount root may hold lost+found), and ctlDir holds the
// supervisor's control files and the passfile.
const (
	dataMount = "/var/lib/postgresql/data"
	pgData    = dataMount + "/pgdata"
	ctlDir    = dataMount + "/ctl"
	passFile  = ctlDir + "/pgpass"
	sockDir   = "/var/run/postgresql"
	pgPort    = 5432

	superuser   = "postgres"
	replUser    = "replicator"
	workUser    = "strongcheck"
	workDB      = "postgres"
	nftTable    = "strongcheck"
	postgresCtr = "postgres"
	sidecarCtr  = "faults"
	initCtr     = "init"
)

// pathPrelude puts the PostgreSQL server binaries on PATH: PG_BINDIR when
// set (Options.PGBinDir), else PATH as it is when it has postgres (the
// official image), else the newest /usr/lib/postgresql/*/bin (Debian's
// packages, whose /usr/bin holds only wrappers of the client tools).
const pathPrelude = `if [ -n "${PG_BINDIR:-}" ]; then
	PATH=$PG_BINDIR:$PATH
elif ! command -v postgres >/dev/null 2>&1; then
	pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	if [ -n "$pgbin" ]; then PATH=$pgbin:$PATH; fi
fi
export PATH
`

// shellPrelude defines the helpers every postgres-container script uses:
// postmaster prints the running postmaster's PID (a process named postgres
// whose parent is the supervisor; a stale postmaster.pid left by a SIGKILL
// prints nothing), children prints the PIDs whose parent is $1 (PostgreSQL
// makes each child its own process group leader, so a group signal would
// miss them), gone waits until every PID in its arguments has exited
// (the supervisor, PID 1 of the container, reaps them), and stopped waits
// until every PID in its arguments is stopped (SIGSTOP takes effect only
// when the process is next scheduled, so kill returning is not enough).
const shellPrelude = pathPrelude + `set -u
ctl=` + ctlDir + `
export PGDATA=` + pgData + `
postmaster() {
	local pid s sup
	pid=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null) || return 0
	read -r sup 2>/dev/null < "$ctl/supervisor.pid" || return 0
	read -r s 2>/dev/null < "/proc/$pid/stat" || return 0
	case "$s" in *"(postgres) "*) ;; *) return 0 ;; esac
	s=${s##*) }
	set -- $s
	if [ "$2" = "$sup" ] && [ "$1" != Z ]; then echo "$pid"; fi
}
children() {
	local parent=$1 f s
	for f in /proc/[0-9]*/stat; do
		read -r s 2>/dev/null < "$f" || continue
		s=${s##*) }
		set -- $s
		if [ "$2" = "$parent" ]; then echo "${f//[^0-9]/}"; fi
	done
}
await_states() {
	# await_states STATES SECONDS WHAT PID...: wait until every PID is gone
	# or in one of STATES (ps letters, e.g. "Z" or "TtZ").
	local states=$1 secs=$2 what=$3 i p s left
	shift 3
	for i in $(seq 1 $((secs * 50))); do
		left=""
		for p in "$@"; do
			read -r s 2>/dev/null < "/proc/$p/stat" || continue
			s=${s##*) }
			case "$states" in *"${s%% *}"*) ;; *) left="$left $p" ;; esac
		done
		[ -z "$left" ] && return 0
		sleep 0.02
	done
	echo "processes $what after ${secs}s:$left" >&2
	return 1
}
gone() { await_states Z 10 "still present" "$@"; }
stopped() { await_states TtZ 2 "not stopped" "$@"; }
`

// supervisorScript is the postgres container's command (PID 1 of the
// container). It runs postgres with the container's arguments while the
// control file "want" says run, and leaves it down when want says stop, so
// Kill, Stop and Rejoin can take postgres down without the container (and
// the pod) ending. A postgres that exits while want is still run (it was
// not stopped by us) is restarted after a second; each exit is counted in
// the control file "exit" so that Start can see a failed start. On SIGTERM
// (pod deletion) it stops postgres cleanly.
const supervisorScript = pathPrelude + `set -u
ctl=` + ctlDir + `
mkdir -p "$ctl"
[ -f "$ctl/want" ] || echo run > "$ctl/want"
echo $$ > "$ctl/supervisor.pid"
n=0
pid=""
shutdown() {
	echo stop > "$ctl/want"
	[ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null
	pg_ctl -D "$PGDATA" -m fast -w -t 20 stop >/dev/null 2>&1
	exit 0
}
trap shutdown TERM INT
while :; do
	if [ "$(cat "$ctl/want" 2>/dev/null)" = run ]; then
		echo "strongcheck-supervisor: starting postgres" >&2
		postgres "$@" &
		pid=$!
		wait "$pid"
		rc=$?
		pid=""
		n=$((n+1))
		echo "$n $rc" > "$ctl/exit"
		echo "strongcheck-supervisor: postgres exited with status $rc" >&2
		if [ "$(cat "$ctl/want" 2>/dev/null)" = run ]; then sleep 1; fi
	fi
	sleep 0.2 &
	wait $!
done
`

// initScript prepares the data directory in the init container: the
// passfile for replication and pg_rewind, then (once; kept when the pod's
// sandbox is recreated) initdb with roles and database on the primary, or
// pg_basebackup with standby.signal and primary_conninfo on a standby.
// Users and database match cluster/local: superuser postgres, workload user
// strongcheck (allowed to create tables in public), database postgres. The
// passwords come from the Secret through the environment and reach psql on
// stdin through printf (a shell builtin): they are in no command line.
const initScript = pathPrelude + `set -eu
umask 077
if ! id -un >/dev/null 2>&1; then
	pguid=$(while IFS=: read -r name _ uid _; do if [ "$name" = postgres ]; then echo "$uid"; fi; done < /etc/passwd)
	echo "strongcheck-init: uid $(id -u) has no entry in the image's /etc/passwd (initdb needs one); the image's postgres user has uid ${pguid:-none}: pass it as --postgres-uid" >&2
	exit 1
fi
ctl=` + ctlDir + `
mkdir -p "$ctl"
printf '*:*:*:` + superuser + `:%s\n*:*:*:` + replUser + `:%s\n' "$SU_PASSWORD" "$REPL_PASSWORD" > "$ctl/pgpass"
if [ -s "$PGDATA/PG_VERSION" ]; then
	echo "strongcheck-init: $PGDATA exists, keeping it"
	exit 0
fi
rm -rf "$PGDATA"
if [ "$ROLE" = primary ]; then
	printf '%s\n' "$SU_PASSWORD" > "$ctl/pwfile"
	initdb -D "$PGDATA" -U ` + superuser + ` --pwfile="$ctl/pwfile" --auth-local=peer --auth-host=scram-sha-256 \
		--data-checksums -E UTF8 --locale=C --no-instructions
	rm -f "$ctl/pwfile"
	printf '%s' "$PG_CONF" >> "$PGDATA/postgresql.conf"
	cat > "$PGDATA/pg_hba.conf" <<'HBA'
local all all peer
host replication ` + replUser + ` all scram-sha-256
host all all all scram-sha-256
HBA
	pg_ctl -D "$PGDATA" -w -t 60 -o "-c listen_addresses='' -c unix_socket_directories=` + sockDir + `" start
	{
		printf "CREATE ROLE ` + replUser + ` WITH REPLICATION LOGIN PASSWORD '%s';\n" "$REPL_PASSWORD"
		printf "CREATE ROLE ` + workUser + ` WITH LOGIN PASSWORD '%s';\n" "$USER_PASSWORD"
		printf "GRANT CREATE ON SCHEMA public TO ` + workUser + `;\n"
	} | psql -X -q -v ON_ERROR_STOP=1 -h ` + sockDir + ` -U ` + superuser + ` -d postgres
	pg_ctl -D "$PGDATA" -m fast -w -t 60 stop
	printf "synchronous_standby_names = '%s'\n" "$SYNC_NAMES" >> "$PGDATA/postgresql.auto.conf"
else
	conninfo="host=$PRIMARY_HOST port=` + "5432" + ` user=` + replUser + ` application_name=$NODE passfile=$ctl/pgpass"
	pg_basebackup -D "$PGDATA" -X stream -c fast -d "$conninfo"
	touch "$PGDATA/standby.signal"
	printf "primary_conninfo = '%s'\n" "$conninfo" >> "$PGDATA/postgresql.auto.conf"
fi
echo run > "$ctl/want"
echo "strongcheck-init: $ROLE ready"
`

// sidecarScript keeps the fault sidecar alive and ends at once on SIGTERM.
const sidecarScript = `trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done`

// The fault and control scripts, run with "bash -c <script> <name> args...".
const (
	killScript = shellPrelude + `
echo stop > "$ctl/want"
pm=$(postmaster)
if [ -z "$pm" ]; then echo "postgres is not running"; exit 0; fi
kids=$(children "$pm")
kill -KILL "$pm" $kids 2>/dev/null || true
gone "$pm" $kids
`
	pauseScript = shellPrelude + `
pm=$(postmaster)
if [ -z "$pm" ]; then echo "postgres is not running" >&2; exit 3; fi
kill -STOP "$pm"
kids=$(children "$pm")
if [ -n "$kids" ]; then kill -STOP $kids; fi
stopped "$pm" $kids
`
	resumeScript = shellPrelude + `
pm=$(postmaster)
if [ -z "$pm" ]; then echo "postgres is not running"; exit 0; fi
kids=$(children "$pm")
if [ -n "$kids" ]; then kill -CONT $kids; fi
kill -CONT "$pm"
`
	// signalBackendsScript takes a signal name as $1 and PIDs after it:
	// it signals those that are children of the postmaster and prints
	// each it signalled.
	signalBackendsScript = shellPrelude + `
sig=$1
shift
pm=$(postmaster)
if [ -z "$pm" ]; then echo "postgres is not running" >&2; exit 3; fi
kids=" $(children "$pm" | tr '\n' ' ') "
for p in "$@"; do
	case "$kids" in *" $p "*) kill -"$sig" "$p" 2>/dev/null && echo "$p" ;; esac
done
exit 0
`
	stopScript = shellPrelude + `
echo stop > "$ctl/want"
pm=$(postmaster)
if [ -z "$pm" ]; then echo "postgres is not running"; exit 0; fi
kill -CONT "$pm" $(children "$pm") 2>/dev/null || true
pg_ctl -D "$PGDATA" -m fast -w -t 60 stop
gone "$pm"
`
	// startScript takes the time limit in seconds as $1.
	startScript = shellPrelude + `
before=$(cat "$ctl/exit" 2>/dev/null || echo none)
if [ -z "$(postmaster)" ]; then echo run > "$ctl/want"; fi
end=$(( $(date +%s) + $1 ))
while [ "$(date +%s)" -lt "$end" ]; do
	if pg_isready -q -h ` + sockDir + ` -p 5432; then exit 0; fi
	now=$(cat "$ctl/exit" 2>/dev/null || echo none)
	if [ "$now" != "$before" ]; then
		echo stop > "$ctl/want"
		echo "postgres exited with status ${now#* } while starting; see the node's log" >&2
		exit 1
	fi
	sleep 0.1
done
echo "postgres did not accept connections within $1 s" >&2
exit 1
`
	// rewindScript takes the source primary's host as $1.
	rewindScript = shellPrelude + `
if [ -n "$(postmaster)" ]; then echo "postgres is still running" >&2; exit 1; fi
pg_rewind -D "$PGDATA" --source-server="host=$1 port=5432 user=` + superuser + ` dbname=postgres passfile=$ctl/pgpass connect_timeout=5"
`
	// standbyScript takes primary_conninfo as $1: it writes standby.signal
	// and replaces primary_conninfo, dropping synchronous_standby_names
	// copied from the source by pg_rewind.
	standbyScript = shellPrelude + `
touch "$PGDATA/standby.signal"
f="$PGDATA/postgresql.auto.conf"
grep -v -E '^[[:space:]]*(primary_conninfo|synchronous_standby_names)[[:space:]]*=' "$f" > "$f.new" || true
printf "primary_conninfo = '%s'\n" "$1" >> "$f.new"
mv "$f.new" "$f"
`
	// followScript takes primary_conninfo as $1 and applies it without a
	// restart (PostgreSQL 13+ restarts the WAL receiver on reload).
	followScript = shellPrelude + `
psql -X -q -v ON_ERROR_STOP=1 -h ` + sockDir + ` -U ` + superuser + ` -d postgres \
	-c "ALTER SYSTEM SET primary_conninfo = '$1'" -c "SELECT pg_reload_conf()"
`
	// healScript removes the partition table if present.
	healScript = `if nft list table inet ` + nftTable + ` >/dev/null 2>&1; then nft delete table inet ` + nftTable + `; fi`
)

// bash builds an exec command running script as name with args.
func bash(script, name string, args ...string) []string {
	return append([]string{"bash", "-c", script, name}, args...)
}

// readyCmd is the postgres container's readiness probe.
func readyCmd() []string {
	return []string{"bash", "-c", pathPrelude + "exec pg_isready -q -h " + sockDir + " -p 5432", "strongcheck-ready"}
}

// Commands sent to the postgres container (see the scripts above).
func killCmd() []string   { return bash(killScript, "strongcheck-kill") }
func pauseCmd() []string  { return bash(pauseScript, "strongcheck-pause") }
func resumeCmd() []string { return bash(resumeScript, "strongcheck-resume") }
func stopCmd() []string   { return bash(stopScript, "strongcheck-stop") }
func signalBackendsCmd(sig string, pids []int) []string {
	args := []string{sig}
	for _, p := range pids {
		args = append(args, strconv.Itoa(p))
	}
	return bash(signalBackendsScript, "strongcheck-signal-backends", args...)
}
func startCmd(timeoutSec int) []string {
	return bash(startScript, "strongcheck-start", strconv.Itoa(timeoutSec))
}
func rewindCmd(primaryHost string) []string {
	return bash(rewindScript, "strongcheck-rewind", primaryHost)
}
func standbyCmd(conninfo string) []string {
	return bash(standbyScript, "strongcheck-standby", conninfo)
}
func followCmd(conninfo string) []string {
	return bash(followScript, "strongcheck-follow", conninfo)
}

// Commands sent to the fault sidecar.
func nftApplyCmd() []string { return []string{"nft", "-f", "-"} }
func healCmd() []string     { return []string{"sh", "-c", healScript} }

// primaryConninfo is a standby's primary_conninfo. The password is in the
// node's passfile, never in the configuration.
func primaryConninfo(primaryHost, node string) string {
	return fmt.Sprintf("host=%s port=%d user=%s application_name=%s passfile=%s", primaryHost, pgPort, replUser, node, passFile)
}

// nftRuleset is the partition of one pod: traffic to and from each of peers
// (IP addresses) dropped in both directions, established streams included.
// The table is replaced atomically (add, delete, define in one transaction).
func nftRuleset(peers []string) string {
	var v4, v6 []string
	for _, p := range peers {
		if ip := net.ParseIP(p); ip != nil && ip.To4() == nil {
			v6 = append(v6, p)
		} else {
			v4 = append(v4, p)
		}
	}
	sort.Strings(v4)
	sort.Strings(v6)
	var b strings.Builder
	fmt.Fprintf(&b, "add table inet %s\ndelete table inet %s\ntable inet %s {\n", nftTable, nftTable, nftTable)
	rules := func(dir, hook string) {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority 0; policy accept;\n", hook, hook)
		if len(v4) > 0 {
			fmt.Fprintf(&b, "\t\tip %s { %s } drop\n", dir, strings.Join(v4, ", "))
		}
		if len(v6) > 0 {
			fmt.Fprintf(&b, "\t\tip6 %s { %s } drop\n", dir, strings.Join(v6, ", "))
		}
		b.WriteString("\t}\n")
	}
	rules("saddr", "input")
	rules("daddr", "output")
	b.WriteString("}\n")
	return b.String()
}
