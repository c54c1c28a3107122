# Sourced by scripts/package-python.sh and scripts/package-node.sh: what both smoke installs share.

# PATH without any directory that holds cargo, rustc or rustup: the install step runs as on a user's machine
# with no Rust toolchain (a package that tried to compile would fail there, not silently build).
path_without_rust() {
  local dir out=""
  local IFS=:
  for dir in $PATH; do
    [ -n "$dir" ] || continue
    if [ -e "$dir/cargo" ] || [ -e "$dir/rustc" ] || [ -e "$dir/rustup" ]; then continue; fi
    out="${out:+$out:}$dir"
  done
  printf '%s' "$out"
}

# Runs "$@" with that PATH, after checking that cargo and rustc are really gone from it.
without_rust() {
  local path
  path="$(path_without_rust)"
  if PATH="$path" command -v cargo >/dev/null || PATH="$path" command -v rustc >/dev/null; then
    echo "cannot hide cargo/rustc from PATH" >&2
    return 1
  fi
  PATH="$path" "$@"
}

# The mock provider on a free port (tests/mock_provider/server.py, first stdout line "PORT <n>"): sets
# MOCK_URL and MOCK_PID; the caller stops it.
start_mock() {
  local out line="" i
  out="$(mktemp)"
  python3 tests/mock_provider/server.py --port 0 >"$out" 2>/dev/null &
  MOCK_PID=$!
  for i in $(seq 100); do
    line="$(head -n1 "$out")"
    case "$line" in "PORT "*) break ;; esac
    sleep 0.1
  done
  rm -f "$out"
  case "$line" in "PORT "*) ;; *) echo "the mock provider did not start" >&2; return 1 ;; esac
  MOCK_URL="http://127.0.0.1:${line#PORT }"
}
