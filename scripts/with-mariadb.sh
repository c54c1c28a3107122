#!/usr/bin/env bash
# Runs a command with a MariaDB server for the MySQL ledger store tests.
#
#   scripts/with-mariadb.sh cargo test -p llmledger-core --features mysql --test ledger_mysql -- --include-ignored
#
# If LLMLEDGER_TEST_MYSQL is already set, the command just runs against that server. Otherwise a throwaway
# server is started: Debian's `mariadb-server` package is installed when mariadbd is missing and we are root;
# `mariadb-install-db` into a temp dir, `mariadbd` on a free loopback port with its socket in that dir (no
# conflict with a system server), a password-protected test user; it is stopped and removed on exit.
# Exported for the command:
#   LLMLEDGER_TEST_MYSQL       mysql://llmledger:PASSWORD@127.0.0.1:PORT/llmledger
#   LLMLEDGER_TEST_MYSQL_CTL   a script taking `stop` or `start` (waits until done), for the fault tests
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

if [ -n "${LLMLEDGER_TEST_MYSQL:-}" ]; then
  exec "$@"
fi

find_bin() { command -v "$1" 2>/dev/null || ls "/usr/sbin/$1" 2>/dev/null || true; }

MARIADBD="$(find_bin mariadbd)"
if [ -z "$MARIADBD" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "with-mariadb: MariaDB is not installed and we are not root; install it or set LLMLEDGER_TEST_MYSQL" >&2
    exit 1
  fi
  echo "with-mariadb: installing mariadb-server with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  # The package must not start (or leave running) a system server: policy-rc.d 101 forbids it.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq mariadb-server >/dev/null
  rm -f /usr/sbin/policy-rc.d
  trap - EXIT
  MARIADBD="$(find_bin mariadbd)"
fi
INSTALL_DB="$(find_bin mariadb-install-db)"
ADMIN="$(find_bin mariadb-admin)"
CLIENT="$(find_bin mariadb)"

# mariadbd refuses to run as root: as root it runs as `mysql` (the package's user).
RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
  RUNAS="mysql"
  id -u mysql >/dev/null 2>&1 || useradd --system --no-create-home mysql
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/llmledger-mariadb.XXXXXX")"
chmod 755 "$TMP"
DATA="$TMP/data"
SOCK="$TMP/mysqld.sock"
mkdir -p "$DATA"
[ -n "$RUNAS" ] && chown -R "$RUNAS" "$TMP"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || echo $((20000 + RANDOM % 20000)))"
PASSWORD="t$RANDOM$RANDOM"

cleanup() {
  "$TMP/ctl" stop >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

USER_OPT=()
[ -n "$RUNAS" ] && USER_OPT=(--user="$RUNAS")
"$INSTALL_DB" --no-defaults "${USER_OPT[@]}" --datadir="$DATA" --auth-root-authentication-method=normal \
  --skip-test-db >"$TMP/install.log" 2>&1 || {
  cat "$TMP/install.log" >&2
  exit 1
}

# The control script the fault tests call: the server runs detached with every descriptor on a file, so
# stopping and starting it from a test leaves no pipe of the test runner open.
cat >"$TMP/ctl" <<EOF
#!/bin/sh
case "\$1" in
  stop)
    "$ADMIN" --no-defaults --socket="$SOCK" -uroot shutdown 2>/dev/null
    i=0; while [ -e "$TMP/mysqld.pid" ] && [ \$i -lt 300 ]; do sleep 0.1; i=\$((i + 1)); done
    [ ! -e "$TMP/mysqld.pid" ] ;;
  start)
    setsid "$MARIADBD" --no-defaults ${USER_OPT[*]} --datadir="$DATA" --socket="$SOCK" --pid-file="$TMP/mysqld.pid" \\
      --port=$PORT --bind-address=127.0.0.1 --skip-name-resolve --log-error="$TMP/server.log" \\
      --innodb-buffer-pool-size=128M --innodb-log-file-size=64M --max-connections=100 \\
      </dev/null >>"$TMP/server.log" 2>&1 &
    i=0
    until "$ADMIN" --no-defaults --socket="$SOCK" -uroot --connect-timeout=1 ping >/dev/null 2>&1; do
      i=\$((i + 1)); [ \$i -gt 300 ] && exit 1; sleep 0.1
    done ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
EOF
chmod 755 "$TMP/ctl"

"$TMP/ctl" start || {
  cat "$TMP/server.log" >&2
  exit 1
}
"$CLIENT" --no-defaults --socket="$SOCK" -uroot -e "
  CREATE DATABASE llmledger;
  CREATE USER 'llmledger'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
  GRANT ALL ON *.* TO 'llmledger'@'127.0.0.1';" || {
  cat "$TMP/server.log" >&2
  exit 1
}

export LLMLEDGER_TEST_MYSQL="mysql://llmledger:$PASSWORD@127.0.0.1:$PORT/llmledger"
export LLMLEDGER_TEST_MYSQL_CTL="$TMP/ctl"
echo "with-mariadb: $("$MARIADBD" --version | awk '{print $3}') on 127.0.0.1:$PORT" >&2

set +e
"$@"
status=$?
set -e
exit $status
