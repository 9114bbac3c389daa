#!/usr/bin/env bash
# Fails when the committed protobuf code (Go, and sdk/js/src/gen) differs
# from what `make proto` generates from proto/.
set -euo pipefail
cd "$(dirname "$0")/.."
generated=(proto sdk/js/src/gen)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for dir in "${generated[@]}"; do
  mkdir -p "$tmp/$dir" && cp -r "$dir/." "$tmp/$dir"
done
./scripts/genproto.sh
stale=0
for dir in "${generated[@]}"; do
  if ! diff -r "$tmp/$dir" "$dir" >/dev/null; then
    { diff -r "$tmp/$dir" "$dir" || true; } | head -40 >&2 # (diff exits 1: pipefail)
    rm -rf "$dir" && cp -r "$tmp/$dir" "$dir"
    stale=1
  fi
done
if [ "$stale" = 1 ]; then
  echo "generated code in ${generated[*]} is stale: run 'make proto' and commit the result" >&2
  exit 1
fi
