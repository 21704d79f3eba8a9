#!/usr/bin/env bash
# bench http before and after a change, side by side in one run: builds
# `greenmesh` at BEFORE_REV (default: the last commit before the host's
# HTTP limits, issue 21) and at the working tree, serves
# tools/bench/http-bench.toml with both, and loads them in alternating
# rounds with `greenmesh bench http --compare`.
#
#   tools/bench/http_before_after.sh [BEFORE_REV]
#   ROUNDS=10 RUN_SECONDS=3 CONNECTIONS=16 tools/bench/http_before_after.sh
#
# Needs `cargo xtask build` (the hello guest). The before build is kept in
# target/bench-before/ and reused.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
before_rev=${1:-f72f916}
rounds=${ROUNDS:-10}
run_seconds=${RUN_SECONDS:-3}
connections=${CONNECTIONS:-16}
before_port=${BEFORE_PORT:-3901}
after_port=${AFTER_PORT:-3902}

hello=tests/guests/target/wasm32-wasip2/release/hello.wasm
[ -f "$hello" ] || { echo "no $hello: run \`cargo xtask build\` first" >&2; exit 1; }

sha=$(git rev-parse --short "$before_rev")
before_bin="$root/target/bench-before/greenmesh-$sha"
if [ ! -x "$before_bin" ]; then
  src="$root/target/bench-before/src-$sha"
  rm -rf "$src"
  git worktree prune
  git worktree add --detach "$src" "$sha" >/dev/null
  # One target folder: the dependencies are built once for both.
  (cd "$src" && CARGO_TARGET_DIR="$root/target" cargo build --release -p greenmesh)
  cp "$root/target/release/greenmesh" "$before_bin"
  git worktree remove --force "$src"
fi
cargo build --release -p greenmesh
after_bin="$root/target/release/greenmesh"

state=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT
"$before_bin" --log-level warn up -f tools/bench/http-bench.toml \
  --listen "127.0.0.1:$before_port" --state-dir "$state/before" &
pids+=($!)
"$after_bin" --log-level warn up -f tools/bench/http-bench.toml \
  --listen "127.0.0.1:$after_port" --state-dir "$state/after" &
pids+=($!)
for port in "$before_port" "$after_port"; do
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/hello" >/dev/null && break
    sleep 0.2
  done
done
echo "before: $sha ($before_bin); after: $(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')"
"$after_bin" --log-level warn bench http --compare \
  "http://127.0.0.1:$before_port" "http://127.0.0.1:$after_port" \
  --rounds "$rounds" --seconds "$run_seconds" --connections "$connections"
