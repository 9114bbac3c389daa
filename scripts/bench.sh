#!/usr/bin/env bash
# End-to-end benchmark: events stored per second through gRPC with 64
# concurrent clients into a real ClickHouse, beside the best raw
# clickhouse-go insert rate (50,000-row inserts) measured in the same run,
# their ratio, and p50/p99 acknowledgement latency (the raw rate in inserts
# of the writer's size is printed for context). Prints benchstat's summary
# of 6 runs. scripts/bench-ghz.sh (make bench-ghz) measures the real
# consentryd, spool on, with an independent client (ghz).
# Usage: scripts/bench.sh [requests per run, default 400]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
n=${1:-400}
out=${BENCH_OUT:-bench-e2e.txt}
go test -run '^$' -bench BenchmarkEndToEnd -benchtime "${n}x" -count 6 ./collector/ | tee "$out"
go tool benchstat "$out"
