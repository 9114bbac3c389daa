#!/usr/bin/env bash
# Fails when the committed protobuf code differs from what `make proto`
# generates from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r proto "$tmp/before"
./scripts/genproto.sh
if ! diff -r "$tmp/before" proto >/dev/null; then
  diff -r "$tmp/before" proto | head -40 >&2
  cp -r "$tmp/before/." proto/
  echo "generated code in proto/ is stale: run 'make proto' and commit the result" >&2
  exit 1
fi
