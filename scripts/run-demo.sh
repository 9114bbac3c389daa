#!/usr/bin/env bash
# Runs Consentry end to end on a local default: installs ClickHouse with apt
# if it is missing, builds the binaries, starts consentryd (which starts and
# manages its own ClickHouse under ./consentry-data), sends demo batches for
# the app com.example.notes with `consentry demo`, prints what landed, marks
# its top crash group resolved, simulates a fleet of devices of that app
# running the SDK with `consentry fleet`, and shuts everything down. Devices
# come in groups of 10 alike (the collector's default k-anonymity), so their
# rows are stored within a release pass, and every example query of
# docs/analysts.md returns rows on this data
# (cmd/consentry/demo_integration_test.go runs exactly this). Run from a
# terminal, it keeps the collector up at the end so you can browse the crash
# triage dashboard, until Ctrl-C (set CONSENTRY_DEMO_EXIT=1 not to wait).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
build_bin

data=${CONSENTRY_DATA_DIR:-consentry-data}
addr=${CONSENTRY_GRPC_ADDR:-127.0.0.1:4790}
http_addr=${CONSENTRY_HTTP_ADDR:-127.0.0.1:4791}
admin_addr=${CONSENTRY_ADMIN_ADDR:-127.0.0.1:4792}
mkdir -p "$data"
echo "== starting consentryd on $addr (data in $data, log in $data/consentryd.log)"
.bin/consentryd --grpc-addr "$addr" --http-addr "$http_addr" --admin-addr "$admin_addr" --data-dir "$data" --log-format console >"$data/consentryd.log" 2>&1 &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
}
trap cleanup EXIT

# Wait for the managed ClickHouse and the collector to come up.
wait_until 120 "$pid" "$data/consentryd.log" test -f "$data/clickhouse.addr"
echo "== sending demo batches (app com.example.notes)"
.bin/consentry demo --addr "$addr" --data-dir "$data"
echo "== simulating a fleet of devices running the SDK"
.bin/consentry fleet --addr "$addr" --http-addr "$http_addr" --data-dir "$data" --devices "${CONSENTRY_FLEET_DEVICES:-40}"
echo "== crash triage dashboard: http://$admin_addr/ (users and passwords: $data/dashboard-credentials)"
ch_port=$(cut -d: -f2 "$data/clickhouse.addr")
ch_http=$(cat "$data/clickhouse-http.addr")
echo "== analysts (docs/analysts.md, every example query has rows for com.example.notes): clickhouse-client --port $ch_port --user analyst --password \"\$(cat $data/clickhouse-analyst-password)\""
echo "== BI tools (docs/analysts.md#bi-tools): user analyst, password in $data/clickhouse-analyst-password, database consentry;"
echo "   Grafana's ClickHouse data source: server 127.0.0.1, port $ch_port (native) or $ch_http (HTTP); Metabase: host 127.0.0.1, port ${ch_http##*:};"
echo "   or: curl -u \"analyst:\$(cat $data/clickhouse-analyst-password)\" 'http://$ch_http/?database=consentry' --data-binary 'SELECT count() FROM sessions'"
if [ -t 0 ] && [ -z "${CONSENTRY_DEMO_EXIT:-}" ]; then
  echo "== the collector keeps running; press Ctrl-C to stop it"
  trap 'echo; cleanup; exit 0' INT TERM
  wait "$pid" || true
fi
echo "== stopping consentryd (graceful: flushes everything accepted)"
cleanup
trap - EXIT
echo "== done; collector log: $data/consentryd.log"
