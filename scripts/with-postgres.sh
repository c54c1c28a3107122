#!/usr/bin/env bash
# Runs a command with a PostgreSQL server for the ledger tests.
#
#   scripts/with-postgres.sh cargo test -p llmledger-core --features postgres
#
# If LLMLEDGER_TEST_PG is already set, the command just runs against that server. Otherwise a throwaway
# server is started: Debian's `postgresql` package is installed when initdb is missing and we are root;
# initdb into a temp dir (as user `postgres` when root: initdb refuses to run as root), a free loopback
# port, no Unix socket; it is stopped and removed on exit. Exported for the command:
#   LLMLEDGER_TEST_PG        postgres://postgres@127.0.0.1:PORT/postgres
#   LLMLEDGER_TEST_PG_CTL    path of pg_ctl
#   LLMLEDGER_TEST_PG_DATA   the data directory (fault tests stop and restart the server with these)
#   LLMLEDGER_TEST_PG_RUNAS  the user pg_ctl must run as ("" = the current user)
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

if [ -n "${LLMLEDGER_TEST_PG:-}" ]; then
  exec "$@"
fi

find_initdb() { ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1; }

INITDB="$(find_initdb || true)"
if [ -z "$INITDB" ] && command -v initdb >/dev/null 2>&1; then
  INITDB="$(command -v initdb)"
fi
if [ -z "$INITDB" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "with-postgres: PostgreSQL is not installed and we are not root; install it or set LLMLEDGER_TEST_PG" >&2
    exit 1
  fi
  echo "with-postgres: installing postgresql with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  INITDB="$(find_initdb)"
fi
BIN="$(dirname "$INITDB")"
PG_CTL="$BIN/pg_ctl"

RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
  RUNAS="postgres"
  id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
fi
as_pg() {
  if [ -n "$RUNAS" ]; then runuser -u "$RUNAS" -- "$@"; else "$@"; fi
}

TMP="$(mktemp -d "${TMPDIR:-/tmp}/llmledger-pg.XXXXXX")"
DATA="$TMP/data"
mkdir -p "$DATA"
[ -n "$RUNAS" ] && chown -R "$RUNAS" "$TMP"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || echo $((20000 + RANDOM % 20000)))"

cleanup() {
  as_pg "$PG_CTL" -D "$DATA" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

as_pg "$INITDB" -D "$DATA" -U postgres --auth=trust -E UTF8 >"$TMP/initdb.log" 2>&1 || {
  cat "$TMP/initdb.log" >&2
  exit 1
}
OPTS="-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=on"
as_pg "$PG_CTL" -D "$DATA" -l "$TMP/server.log" -w -o "$OPTS" start >/dev/null || {
  cat "$TMP/server.log" >&2
  exit 1
}

export LLMLEDGER_TEST_PG="postgres://postgres@127.0.0.1:$PORT/postgres"
export LLMLEDGER_TEST_PG_CTL="$PG_CTL"
export LLMLEDGER_TEST_PG_DATA="$DATA"
export LLMLEDGER_TEST_PG_RUNAS="$RUNAS"
export LLMLEDGER_TEST_PG_OPTS="$OPTS"
export LLMLEDGER_TEST_PG_LOG="$TMP/server.log"
echo "with-postgres: PostgreSQL ($(basename "$(dirname "$BIN")")) on 127.0.0.1:$PORT" >&2

set +e
"$@"
status=$?
set -e
exit $status
