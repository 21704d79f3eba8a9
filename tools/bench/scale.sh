#!/usr/bin/env bash
# `greenmesh bench scale` with a throwaway Postgres (tools/bench/on-postgres.sh):
#   TASKS=2000 NODES=4 CLIENTS=8 LIGHT=100 PG_OPTIONS='-c synchronous_commit=off' tools/bench/scale.sh
set -euo pipefail
exec "$(dirname "$0")/on-postgres.sh" scale \
  --tasks "${TASKS:-2000}" --nodes "${NODES:-4}" --clients "${CLIENTS:-8}" --light "${LIGHT:-100}"
