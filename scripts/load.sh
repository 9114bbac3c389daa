#!/usr/bin/env bash
# Load test: runs consentryd (with its managed ClickHouse) twice, with the
# write-ahead spool on and off, and drives each with `consentry load` for
# LOAD_DURATION (default 3m): acknowledged events/s, acknowledgement
# latency p50/p99/max, refusals, and the collector's peak RSS.
# Usage: scripts/load.sh   (LOAD_DURATION, LOAD_CLIENTS, LOAD_BATCH to change)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
build_bin

duration=${LOAD_DURATION:-3m}
clients=${LOAD_CLIENTS:-32}
batch=${LOAD_BATCH:-200}
base=$(mktemp -d /tmp/consentry-load.XXXXXX)
trap 'rm -rf "$base"' EXIT

for spool in true false; do
  data="$base/spool-$spool"
  mkdir -p "$data"
  .bin/consentryd --data-dir "$data" --grpc-addr 127.0.0.1:14790 --http-addr 127.0.0.1:14791 \
    --admin-addr 127.0.0.1:14792 --spool="$spool" --log-level warn >"$data/consentryd.log" 2>&1 &
  pid=$!
  wait_until 120 "$pid" "$data/consentryd.log" test -f "$data/clickhouse.addr"
  echo "== spool $spool: $clients clients, $batch-event batches, $duration"
  .bin/consentry load --addr 127.0.0.1:14790 --admin-addr 127.0.0.1:14792 --data-dir "$data" \
    --clients "$clients" --batch "$batch" --duration "$duration"
  kill -TERM "$pid"
  wait "$pid" || true
done
