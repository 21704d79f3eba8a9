#!/usr/bin/env bash
# `greenmesh bench scale` with a throwaway Postgres: initdb into a temporary
# folder, pg_ctl on a free loopback port (as the `postgres` user when run as
# root), the release build of the coordinator, then stop and remove it all.
#   TASKS=2000 NODES=4 CLIENTS=8 LIGHT=100 PG_OPTIONS='-c synchronous_commit=off' tools/bench/scale.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$bin/pg_ctl" ] || { echo "needs Debian's postgresql (apt-get install postgresql)"; exit 1; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$bin/initdb" -D "$dir/data" -U greenmesh --auth=trust --no-sync >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' -c max_connections=300 ${PG_OPTIONS:-}" >/dev/null
trap '"${as_pg[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null; rm -rf "$dir"' EXIT
cargo xtask build >/dev/null
cargo build --release -p greenmesh >/dev/null
target/release/greenmesh --log-level warn bench scale \
  --postgres "postgres://greenmesh@127.0.0.1:$port/postgres" \
  --tasks "${TASKS:-2000}" --nodes "${NODES:-4}" --clients "${CLIENTS:-8}" --light "${LIGHT:-100}"
