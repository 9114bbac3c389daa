#!/usr/bin/env bash
# Runs every test: installs what the tests need (ClickHouse, protoc, chDB,
# buildah), checks the generated protobuf code is current, vets, and runs
# unit, integration (real ClickHouse 18.16 servers started in temp
# folders) and chDB (ClickHouse 26.x) tests with the race detector, then
# the deployment tests (deploy/: systemd unit, image, Helm chart), then
# every benchmark once. Leaves no server running.
# Usage: scripts/test.sh [go test flags...]
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh --with-test-deps
export CONSENTRY_CHDB_LIB="$PWD/.cache/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so"

echo "== generated code is current" >&2
./scripts/check-generated.sh

echo "== gofmt" >&2
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [ -n "$unformatted" ]; then
  echo "not gofmt-formatted:" >&2; echo "$unformatted" >&2; exit 1
fi

echo "== go vet" >&2
go vet ./...
(cd deploy && go vet ./...)

echo "== go test" >&2
go test -race -count=1 -timeout 30m "$@" ./...

# deploy/ is a module of its own (its tests use Helm's and Kubernetes'
# modules): the systemd unit, the image and the Helm chart.
echo "== go test (deploy)" >&2
(cd deploy && go test -race -count=1 -timeout 20m "$@" ./...)

# Every benchmark once, so none can rot unnoticed (BenchmarkEndToEnd once
# panicked on a second metrics registration and nothing ran it).
echo "== benchmarks, once each" >&2
bench_out=$(mktemp)
trap 'rm -f "$bench_out"' EXIT
if ! go test -run '^$' -bench . -benchtime 1x -count=1 -timeout 15m ./... >"$bench_out" 2>&1; then
  grep -v -E '^(ok|PASS|goos|goarch|pkg|cpu|Benchmark)' "$bench_out" >&2; exit 1
fi
