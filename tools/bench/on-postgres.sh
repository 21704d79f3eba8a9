#!/usr/bin/env bash
# `greenmesh bench <name> --postgres <server> [args...]` with a throwaway
# Postgres: initdb into a temporary folder, pg_ctl on a free loopback port
# (as the `postgres` user when run as root), the release build of the
# coordinator, then stop and remove it all. For the benchmarks that compare
# SQLite with Postgres in one run (`scale`, `dispatch`):
#   PG_OPTIONS='-c synchronous_commit=off' tools/bench/on-postgres.sh dispatch --nodes 1000 --tasks 10000
# PG_LOG=FILE keeps the server's log (with PG_OPTIONS='-c log_min_duration_statement=2',
# the statements that took 2 ms or more).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 <scale|dispatch> [bench args...]"; exit 2; }
bench=$1
shift
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] && [ -x "$bin/pg_ctl" ] || { echo "needs Debian's postgresql (apt-get install postgresql)"; exit 1; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U greenmesh --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' -c max_connections=300 ${PG_OPTIONS:-}" >/dev/null
trap '"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null; [ -z "${PG_LOG:-}" ] || cp "$dir/server.log" "$PG_LOG"; rm -rf "$dir"' EXIT
cargo xtask build >/dev/null
cargo build --release -p greenmesh >/dev/null
target/release/greenmesh --log-level warn bench "$bench" \
  --postgres "postgres://greenmesh@127.0.0.1:$port/postgres" "$@"
