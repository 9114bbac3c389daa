#!/usr/bin/env bash
# Installs what Consentry's build, demo and tests need on a fresh Debian 12
# machine with Go: ClickHouse (server and client), protoc, and ZooKeeper
# (for the local cluster of make cluster and the cluster tests) from Debian.
# With --with-test-deps, also npm and Chromium from Debian (Chromium drives
# the dashboard's browser tests, see internal/browser), buildah,
# systemd-analyze, systemd-nspawn, debootstrap and promtool (the
# deployment tests, see deploy/), and chDB's library
# (ClickHouse 26.x in-process, for schema tests) from npm into .cache/chdb,
# the JavaScript SDK's pinned packages (npm ci in sdk/js), and grpcurl
# from the Go module proxy into .bin.
# Idempotent: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CHDB_VERSION=26.7.3-stable.1

need=()
command -v clickhouse-server >/dev/null 2>&1 || command -v clickhouse >/dev/null 2>&1 || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null 2>&1 || command -v clickhouse >/dev/null 2>&1 || need+=(clickhouse-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
# Debian's zookeeper package installs no service: the cluster runs it as a
# child (internal/chcluster). It needs a JRE, which it depends on.
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
if [ "${1:-}" = "--with-test-deps" ]; then
  command -v npm >/dev/null 2>&1 || need+=(npm)
  # The API guide's examples (docs/api.md) are curl commands.
  command -v curl >/dev/null 2>&1 || need+=(curl)
  # The deployment tests (deploy/): the image is built with buildah, the
  # systemd unit checked with systemd-analyze and run in a Debian booted
  # with systemd-nspawn (made with debootstrap), the alerting rules
  # checked with promtool (Debian's prometheus; its service is not
  # started).
  command -v buildah >/dev/null 2>&1 || need+=(buildah)
  command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
  command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  command -v promtool >/dev/null 2>&1 || need+=(prometheus)
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1 || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]} with apt" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ "${1:-}" = "--with-test-deps" ]; then
  lib=.cache/chdb/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so
  if [ ! -f "$lib" ] || ! grep -q "\"version\": \"${CHDB_VERSION}\"" .cache/chdb/node_modules/@chdb/lib-linux-x64-gnu/package.json 2>/dev/null; then
    echo "deps: installing @chdb/lib-linux-x64-gnu@${CHDB_VERSION} with npm into .cache/chdb" >&2
    mkdir -p .cache/chdb
    npm install --prefix .cache/chdb --no-save --no-audit --no-fund --loglevel=error "@chdb/lib-linux-x64-gnu@${CHDB_VERSION}" >/dev/null
  fi
  # grpcurl, an independent gRPC client, runs the API guide's gRPC
  # examples (docs/api.md).
  GRPCURL_VERSION=v1.9.4
  if [ ! -x .bin/grpcurl ] || ! go version -m .bin/grpcurl | grep -q "grpcurl[[:space:]]*$GRPCURL_VERSION"; then
    echo "deps: installing grpcurl $GRPCURL_VERSION into .bin" >&2
    GOBIN="$PWD/.bin" go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
  fi
  if [ ! -x sdk/js/node_modules/.bin/tsc ]; then
    echo "deps: installing the JavaScript SDK's packages with npm ci into sdk/js/node_modules" >&2
    npm ci --prefix sdk/js --no-audit --no-fund --loglevel=error >/dev/null
  fi
fi
