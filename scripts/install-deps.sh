#!/usr/bin/env bash
# Installs what strongcheck's local backend and tests need, when missing:
# PostgreSQL server binaries, nftables, iproute2, util-linux (nsenter),
# Chromium for the report's browser test (STRONGCHECK_NO_BROWSER=1 skips it),
# and gdb for the SSI commit-window test.
# With --managers (or STRONGCHECK_MANAGERS=1) also the HA managers that
# `strongcheck test --manager` runs and the tests exercise: Debian's patroni
# (with python3-etcd), etcd-server, pg-auto-failover-cli,
# postgresql-15-auto-failover, and tini (the subreaper their processes run
# under). Debian's policy-rc.d may keep their services from starting on
# install; strongcheck never uses those services.
# Debian/Ubuntu only; says plainly what is missing elsewhere.
set -euo pipefail

managers=${STRONGCHECK_MANAGERS:-0}
for a in "$@"; do
  case $a in
    --managers) managers=1;;
    *) echo "install-deps.sh: unknown argument $a (only --managers)" >&2; exit 2;;
  esac
done

have_pg() {
  local d
  if d=$(pg_config --bindir 2>/dev/null) && [ -x "$d/postgres" ] && [ -x "$d/pg_rewind" ]; then return 0; fi
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/postgres" ] && [ -x "$d/pg_rewind" ] && return 0; done
  return 1
}

missing=()
have_pg || missing+=(postgresql-15)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v pgbench >/dev/null 2>&1 || have_pg || true
if [ "${STRONGCHECK_NO_BROWSER:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
  missing+=(chromium)
fi
# gdb: workload's TestIntegrationSSICommitWindow holds a backend inside its
# COMMIT with a breakpoint (it skips without gdb).
command -v gdb >/dev/null 2>&1 || missing+=(gdb)

if [ "$managers" = 1 ]; then
  command -v patroni >/dev/null 2>&1 || missing+=(patroni)
  dpkg -s python3-etcd >/dev/null 2>&1 || missing+=(python3-etcd)
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
  command -v pg_autoctl >/dev/null 2>&1 || missing+=(pg-auto-failover-cli)
  ls /usr/lib/postgresql/*/lib/pgautofailover.so >/dev/null 2>&1 || missing+=(postgresql-15-auto-failover)
  command -v tini >/dev/null 2>&1 || missing+=(tini)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "strongcheck: installing ${missing[*]}" >&2
if [ "$(id -u)" != 0 ]; then
  echo "strongcheck: missing ${missing[*]} and not root: install them (sudo apt-get install ${missing[*]}) or run as root" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "strongcheck: missing ${missing[*]} and no apt-get: install PostgreSQL server binaries (with pg_rewind), nftables, iproute2 and util-linux by hand" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a cluster of its own on port 5432; strongcheck
# does not use it (its nodes run in their own namespaces).
echo "strongcheck: installed ${missing[*]}" >&2
