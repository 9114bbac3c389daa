#!/usr/bin/env bash
# Fails when the committed protobuf code (Go, and sdk/js/src/gen) differs
# from what `make proto` generates from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r proto "$tmp/before"
cp -r sdk/js/src/gen "$tmp/before-js"
./scripts/genproto.sh
stale=0
if ! diff -r "$tmp/before" proto >/dev/null; then
  diff -r "$tmp/before" proto | head -40 >&2
  cp -r "$tmp/before/." proto/
  stale=1
fi
if ! diff -r "$tmp/before-js" sdk/js/src/gen >/dev/null; then
  diff -r "$tmp/before-js" sdk/js/src/gen | head -40 >&2
  rm -rf sdk/js/src/gen && cp -r "$tmp/before-js" sdk/js/src/gen
  stale=1
fi
if [ "$stale" = 1 ]; then
  echo "generated code in proto/ or sdk/js/src/gen is stale: run 'make proto' and commit the result" >&2
  exit 1
fi
