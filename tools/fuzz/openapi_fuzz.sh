#!/usr/bin/env bash
# Fuzzes a running coordinator from docs/openapi.json with Schemathesis:
# every operation, generated valid and invalid requests, and checks that no
# response is a 5xx and that every status, content type and body is the
# one documented. See tools/fuzz/README.md.
#
#   tools/fuzz/openapi_fuzz.sh            bounded run (CI): 50 examples per operation, seed 21
#   tools/fuzz/openapi_fuzz.sh --full     full run: 1000 examples per operation, a random seed
#
# Options: --examples N (test cases per operation and phase), --seed N,
# --no-build (use the built binary and components as they are),
# -- ARGS... (passed on to `schemathesis run`).
# Environment: FUZZ_EXAMPLES, FUZZ_SEED, FUZZ_WORKERS (default 2),
# FUZZ_TIMEOUT (seconds the fuzzer may run: 600 bounded, 3600 full),
# GREENMESH_BIN (a greenmesh binary to run; implies --no-build),
# FUZZ_REPORT_DIR (default target/fuzz-report).
# Exits non-zero on any failure: a check that failed, a 5xx, a coordinator
# that crashed or panicked, or a fixture that could not be set up.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

full=0
build=1
examples="${FUZZ_EXAMPLES:-}"
seed="${FUZZ_SEED:-}"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --full) full=1 ;;
    --examples) examples="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    --no-build) build=0 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "openapi_fuzz: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$examples" ]; then
  if [ "$full" = 1 ]; then examples=1000; else examples=50; fi
fi
if [ -z "$seed" ]; then
  # The bounded run is reproducible; a full run explores a new seed each time.
  if [ "$full" = 1 ]; then seed=$(python3 -c 'import random; print(random.getrandbits(64))'); else seed=21; fi
fi
workers="${FUZZ_WORKERS:-2}"
if [ "$full" = 1 ]; then budget="${FUZZ_TIMEOUT:-3600}"; else budget="${FUZZ_TIMEOUT:-600}"; fi
report_dir="${FUZZ_REPORT_DIR:-$root/target/fuzz-report}"

# The pinned fuzzer, in its own virtual environment (reused while the pins
# are unchanged).
venv="$root/target/fuzz-venv"
requirements="$root/tools/fuzz/requirements.txt"
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
  echo "openapi_fuzz: installing $(grep -E '^schemathesis==' "$requirements") into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi

# The coordinator: the host binary and the components spin.toml names.
bin="${GREENMESH_BIN:-}"
if [ -n "$bin" ]; then
  build=0
else
  bin="$root/target/debug/greenmesh"
fi
if [ "$build" = 1 ]; then
  cargo xtask build
  cargo build --package greenmesh
fi
if [ ! -x "$bin" ] || [ ! -f components/target/wasm32-wasip2/release/broker.wasm ]; then
  echo "openapi_fuzz: $bin or the components are missing (cargo xtask build; cargo build -p greenmesh)" >&2
  exit 2
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

admin_token="fuzz-admin-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
log="$report_dir/coordinator.log"
mkdir -p "$report_dir"
rm -f "$report_dir"/*.ndjson "$report_dir"/*.xml
started=0
for attempt in 1 2 3; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$work/state"; mkdir -p "$work/state"
  # Limits meant for the open internet are raised so that thousands of
  # requests from one address and one user reach the handlers; quotas off
  # so that submitted tasks queue and dispatch instead of being refused;
  # importance polls close after 1 s instead of 5 min, so that closed
  # polls are seen within the run.
  SPIN_VARIABLE_ADMIN_TOKEN="$admin_token" \
  SPIN_VARIABLE_REGISTRATIONS_PER_ADDRESS_PER_DAY=1000000 \
  SPIN_VARIABLE_RATE_LIMIT_PER_MINUTE=100000000 \
  SPIN_VARIABLE_QUOTAS=off \
  SPIN_VARIABLE_VOTING_WINDOW_MS=1000 \
    "$bin" up -f spin.toml --listen "127.0.0.1:$port" --state-dir "$work/state" --log-level warn \
    >"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if python3 -c "import urllib.request, sys; urllib.request.urlopen('http://127.0.0.1:$port/api/v1/health', timeout=2)" 2>/dev/null; then
      started=1; break
    fi
    sleep 0.2
  done
  [ "$started" = 1 ] && break
  kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true
  server_pid=""
  echo "openapi_fuzz: the coordinator did not start (attempt $attempt):" >&2
  tail -5 "$log" >&2
done
if [ "$started" != 1 ]; then exit 1; fi
base="http://127.0.0.1:$port"
echo "openapi_fuzz: coordinator on $base (log: $log)"

export PYTHONDONTWRITEBYTECODE=1
fixtures=$("$venv/bin/python" tools/fuzz/fixtures.py "$base")
eval "$fixtures"
export GM_FUZZ_TOKEN GM_FUZZ_NODE_ID GM_FUZZ_NODE_SEED GM_FUZZ_LEASES
export GM_FUZZ_BASE_URL="$base" GM_FUZZ_ADMIN_TOKEN="$admin_token"
export GM_FUZZ_HOOKS="$root/tools/fuzz/hooks.py" GM_FUZZ_STATS="$work/stats.json"

echo "openapi_fuzz: schemathesis, $examples examples per operation, seed $seed, $workers workers"
start=$(date +%s)
set +e
timeout "$budget" "$venv/bin/schemathesis" --config-file tools/fuzz/schemathesis.toml run docs/openapi.json \
  --max-examples "$examples" --seed "$seed" --workers "$workers" \
  --continue-on-failure --no-color \
  --report junit,ndjson --report-dir "$report_dir" \
  "${extra[@]}"
st_status=$?
set -e
if [ "$st_status" = 124 ]; then echo "openapi_fuzz: the fuzzer ran past $budget s (FUZZ_TIMEOUT) and was stopped" >&2; fi
elapsed=$(( $(date +%s) - start ))

status=$st_status
server_state="running"
if ! kill -0 "$server_pid" 2>/dev/null; then
  server_state="DIED"
  status=1
fi
panics=$(grep -c -i -E 'panicked|guest failed|wasm trap' "$log" || true)
if [ "$panics" != 0 ]; then status=1; fi

"$venv/bin/python" - "$work/stats.json" "$elapsed" "$st_status" "$server_state" "$panics" "$report_dir" <<'EOF'
import json, sys
path, elapsed, st_status, server, panics, report_dir = sys.argv[1:]
try:
    stats = json.load(open(path))
except OSError:
    stats = {"requests": 0, "signed": 0, "no_response": 0, "status": {}}
by_class = {}
for code, n in stats["status"].items():
    by_class[code[0] + "xx"] = by_class.get(code[0] + "xx", 0) + n
server_errors = {c: n for c, n in stats["status"].items() if c.startswith("5")}
print()
print("openapi_fuzz summary")
print(f"  requests sent:      {stats['requests']} in {elapsed} s ({stats['signed']} signed as the fixture node)")
print("  responses:          " + ", ".join(f"{k}: {v}" for k, v in sorted(by_class.items())))
print("  by status:          " + ", ".join(f"{k}: {v}" for k, v in stats["status"].items()))
print(f"  5xx responses:      {sum(server_errors.values())}" + (f" {server_errors}" if server_errors else ""))
print(f"  no response:        {stats['no_response']}")
print(f"  schemathesis:       {'passed' if st_status == '0' else 'FAILED (exit ' + st_status + '; failures above)'}")
print(f"  coordinator:        {server}, {panics} panics/traps in its log")
print(f"  reports:            {report_dir}")
operations = stats.get("operations", {})
print(f"  operations called:  {len(operations)}")
with open(f"{report_dir}/operations.txt", "w") as out:
    for op, codes in operations.items():
        out.write(f"{sum(codes.values()):6} {op:48} " + " ".join(f"{c}:{n}" for c, n in codes.items()) + "\n")
print(f"  per operation:      {report_dir}/operations.txt")
if server_errors:
    sys.exit(1)
EOF
[ $? = 0 ] || status=1
if [ "$status" = 0 ]; then echo "openapi_fuzz: PASSED"; else echo "openapi_fuzz: FAILED"; fi
exit "$status"
