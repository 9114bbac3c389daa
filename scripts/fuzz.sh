#!/usr/bin/env bash
# Fuzzes every fuzz test of the module (go test -fuzz runs one target at a
# time), FUZZ_TIME each (default 30s; 25 targets, about 15 minutes with
# the builds), or only those whose package folder or name matches
# FUZZ_MATCH (a grep -E pattern, e.g. FUZZ_MATCH=collector or
# FUZZ_MATCH=FuzzString). make test runs their seed corpora only. An
# input that fails is written to the package's testdata/fuzz/<name>/ and
# the run stops there: fix the cause and commit the input, which then
# runs as a seed in every make test.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZ_TIME:-30s}
match=${FUZZ_MATCH:-.}
# The fuzz tests, from the sources (go test -list would build every
# package's tests first).
targets=()
while read -r file; do
  for name in $(grep -oE '^func Fuzz[A-Za-z0-9_]*' "$file" | cut -c6-); do
    pkg=./$(dirname "${file#./}")
    if printf '%s %s\n' "$pkg" "$name" | grep -qE -- "$match"; then
      targets+=("$pkg $name")
    fi
  done
done < <(grep -rl --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.git '^func Fuzz' . | sort)
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz test matches FUZZ_MATCH=$match" >&2; exit 1; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
i=0
for t in "${targets[@]}"; do
  i=$((i + 1))
  pkg=${t% *} name=${t#* }
  echo "== [$i/${#targets[@]}] $name ($pkg), $fuzztime"
  # Minimizing a new input is capped: the seeds are whole batches, and
  # minimizing one for the default minute would leave the target no time.
  if ! go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg" >"$out" 2>&1; then
    cat "$out"
    exit 1
  fi
  grep -E '^fuzz: elapsed' "$out" | tail -n 1
done
echo "== fuzzed ${#targets[@]} targets, $fuzztime each: no failure"
