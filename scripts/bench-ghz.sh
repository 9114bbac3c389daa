#!/usr/bin/env bash
# End-to-end benchmark with an independent load generator (ghz): starts
# consentryd with its managed ClickHouse (spool on) in a temp dir, sends
# BENCH_BATCHES distinct pre-encoded BENCH_EVENTS-event mixed batches in
# turn (binary call data) from BENCH_CLIENTS clients over BENCH_CONNS
# connections for BENCH_DURATION, counts what ClickHouse stored from its
# own system.events InsertedRows, and measures in the same run, before
# the load and after it, the raw ceiling: the collector's column-wise
# insert of 50,000-row inserts, two at a time (`consentry bench-raw`);
# the better of the two is the best raw. Prints per run and the median of
# BENCH_RUNS runs: stored events/s, best raw rows/s, their ratio,
# acknowledgement p50/p99/p99.9 (ghz's, and the collector's own p50/p99 from
# its latency histogram), collector CPU seconds per 1M stored
# events (its own utime+stime from /proc), its peak RSS, and ClickHouse's
# CPU seconds per 1M events, counted until the merges the load left behind
# are done (the raw ceiling is then measured on a server at rest).
#
# BENCH_ARGS adds consentryd flags (e.g. --generalize-k 1: k-anonymity
# off; with its default k of 10 the bench's 150 consents, each on a
# device drawn at random, are rarer than k, so every row is held and
# released: ClickHouse stores it twice).
# BENCH_CONSENTRYD=path runs another consentryd binary (an older build,
# for a before/after comparison) with this tree's load generator.
# BENCH_RPS=n sends at a fixed n requests/s instead of as fast as
# acknowledged; BENCH_RPS=half is the half-load latency check as issue 17
# defines it: BENCH_RUNS runs at full load measure the maximum, then as
# many runs send at half their median acknowledged request rate (both
# sets of figures are printed). BENCH_PROFILE=file saves a
# 15 s CPU profile of the collector taken mid-run, and file.allocs its
# allocations up to the end of the load (first run only).
# Usage: scripts/bench-ghz.sh   (or make bench-ghz); see docs/benchmarks.md.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$0")/.."
. scripts/lib.sh

runs=${BENCH_RUNS:-3}
duration=${BENCH_DURATION:-30s}
clients=${BENCH_CLIENTS:-32}
conns=${BENCH_CONNS:-4}
batches=${BENCH_BATCHES:-150}
events=${BENCH_EVENTS:-200}
rps=${BENCH_RPS:-0}
raw_duration=${BENCH_RAW_DURATION:-10s}
profile=${BENCH_PROFILE:-}
port=${BENCH_PORT:-14890}
ghz=${GHZ:-$(command -v ghz || echo "$HOME/go/bin/ghz")}

if [ "$rps" = half ]; then
  full=$(mktemp /tmp/consentry-ghz-full.XXXXXX)
  echo "== full load: the maximum"
  BENCH_RPS=0 BENCH_JSON=$full "$self"
  half=$(python3 - "$full" "$events" <<'EOF'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
print(round(statistics.median(r["acked_per_s"] for r in rs) / int(sys.argv[2]) / 2))
EOF
)
  rm -f "$full"
  echo "== half load: $half requests/s ($((half * events)) events/s), half the median acknowledged at full load"
  BENCH_RPS=$half BENCH_PROFILE= exec "$self"
fi
[ -x "$ghz" ] || { echo "ghz missing: go install github.com/bojand/ghz/cmd/ghz@v0.93.0" >&2; exit 1; }

./scripts/deps.sh >/dev/null
base=$(mktemp -d /tmp/consentry-ghz.XXXXXX)
bin=$base/bin
go build -o "$bin/" ./cmd/consentryd ./cmd/consentry
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; fi
  rm -rf "$base"
}
trap cleanup EXIT

grpc=127.0.0.1:$port admin=127.0.0.1:$((port + 2))
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tck=$(getconf CLK_TCK)
# ghz's own .proto parser predates proto3 optional: give it a descriptor set.
protoc -I proto --include_imports -o "$base/ingest.protoset" proto/consentry/v1/ingest.proto
results=$base/results
: >"$results"

for run in $(seq 1 "$runs"); do
  data=$base/run$run
  mkdir -p "$data"
  "${BENCH_CONSENTRYD:-$bin/consentryd}" --data-dir "$data" --grpc-addr "$grpc" --http-addr "127.0.0.1:$((port + 1))" \
    --admin-addr "$admin" --clickhouse-native-port $((port + 3)) --clickhouse-http-port $((port + 4)) --spool=true --pprof --log-level warn ${BENCH_ARGS:-} >"$data/consentryd.log" 2>&1 &
  pid=$!
  wait_until 240 "$pid" "$data/consentryd.log" curl -fs -o /dev/null "http://$admin/readyz"
  ch_pid=$(pgrep -P "$pid" | head -1 || true)
  "$bin/consentry" bench-data --data-dir "$data" --out "$data/calls.bin" --batches "$batches" --batch "$events" >/dev/null
  # The raw ceiling on the server at rest before the load too: the best
  # of the two is the reference (what the server does after the load
  # moves with the load's own after-effects).
  "$bin/consentry" bench-raw --data-dir "$data" --duration "$raw_duration" >"$data/raw0.out" || true
  "$bin/consentry" bench-raw --data-dir "$data" --wait-merges 120s >/dev/null
  rows0=$("$bin/consentry" bench-raw --data-dir "$data" --inserted-rows)
  cpu0=$(cpu_ticks "$pid") chcpu0=$(cpu_ticks "$ch_pid")
  if [ -n "$profile" ] && [ "$run" = 1 ]; then
    (sleep 5; curl -fs -o "$profile" "http://$admin/debug/pprof/profile?seconds=15") &
  fi
  curl -fs -o "$data/metrics0" "http://$admin/metrics" || : >"$data/metrics0"
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$data/ghz.time" "$ghz" --insecure --protoset "$base/ingest.protoset" \
    --call consentry.v1.IngestService/Ingest --binary-file "$data/calls.bin" \
    -c "$clients" --connections "$conns" -z "$duration" --rps "$rps" -t 20s \
    -O json -o "$data/ghz.json" "$grpc" || true
  t1=$(date +%s.%N)
  curl -fs -o "$data/metrics1" "http://$admin/metrics" || : >"$data/metrics1"
  if [ -n "$profile" ] && [ "$run" = 1 ]; then
    curl -fs -o "$profile.allocs" "http://$admin/debug/pprof/allocs" || true
  fi
  rows1=$("$bin/consentry" bench-raw --data-dir "$data" --inserted-rows)
  # Wait for the spool to ship its backlog, then count everything stored.
  for _ in $(seq 1 600); do
    b=$(curl -fs "http://$admin/metrics" | awk '$1 == "consentry_spool_bytes" {print $2}')
    [ "${b:-0}" = 0 ] && break
    sleep 0.2
  done
  sleep 1
  t2=$(date +%s.%N)
  rows2=$("$bin/consentry" bench-raw --data-dir "$data" --inserted-rows)
  cpu2=$(cpu_ticks "$pid")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
  # The merges the load left behind are its cost too, and would slow the
  # raw insert below: wait until ClickHouse runs none (at most 2 min).
  settle=$("$bin/consentry" bench-raw --data-dir "$data" --wait-merges 120s)
  chcpu2=$(cpu_ticks "$ch_pid")
  # The raw ceiling as the server counts it (InsertedRows), like the stored figure.
  # and what it costs: ClickHouse's CPU and the inserting client's.
  rawch0=$(cpu_ticks "$ch_pid")
  /usr/bin/time -f "%U %S" -o "$data/raw.time" "$bin/consentry" bench-raw --data-dir "$data" --duration "$raw_duration" >"$data/raw.out" || true
  rawch1=$(cpu_ticks "$ch_pid")
  raw=$(awk '{print $2}' "$data/raw.out"); raw=${raw:-nan}
  raw0=$(awk '{print $2}' "$data/raw0.out"); raw0=${raw0:-nan}
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true; pid=

  python3 - "$data/ghz.json" "$run" "$t0" "$t1" "$t2" "$rows0" "$rows1" "$rows2" "$cpu0" "$cpu2" \
    "$chcpu0" "$chcpu2" "$tck" "$hwm" "$raw" "$data/ghz.time" "$events" "$rawch0" "$rawch1" "$data/raw.time" "$raw_duration" "$(nproc)" "$settle" "$raw0" \
    "$data/metrics0" "$data/metrics1" >>"$results" <<'EOF'
import json, math, re, sys
f, run, t0, t1, t2, r0, r1, r2, c0, c2, h0, h2, tck, hwm, raw, gt, ev, rh0, rh1, rt, rd, cores, settle, raw0, m0, m1 = sys.argv[1:]
def buckets(path):
    """The collector's ingest_duration_seconds{outcome="ok"} cumulative bucket counts, by upper bound."""
    out = {}
    for line in open(path):
        m = re.match(r'consentry_ingest_duration_seconds_bucket\{(.*)\} (\S+)$', line)
        if m and 'outcome="ok"' in m.group(1):
            le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
            out[float(le)] = float(m.group(2))
    return out
def server_q(p):
    """Quantile p of the collector's own acknowledgement latency during the load, in ms, interpolated
    linearly within its histogram bucket (bounds 1, 2, 4, ... ms: a coarse figure)."""
    b0, b1 = buckets(m0), buckets(m1)
    les = sorted(b1)
    cum = [b1[le] - b0.get(le, 0) for le in les]
    if not cum or cum[-1] == 0:
        return 0
    want, prev_le, prev_c = p * cum[-1], 0.0, 0.0
    for le, c in zip(les, cum):
        if c >= want:
            if math.isinf(le):
                return prev_le * 1e3
            return (prev_le + (le - prev_le) * (want - prev_c) / max(c - prev_c, 1)) * 1e3
        prev_le, prev_c = le, c
    return prev_le * 1e3
after = float(raw)
best = max((float(x) for x in (raw0, raw) if not math.isnan(float(x))), default=float("nan"))
t0, t1, t2 = float(t0), float(t1), float(t2)
r0, r1, r2, c0, c2, h0, h2, tck = map(int, (r0, r1, r2, c0, c2, h0, h2, tck))
rep = json.load(open(f))
ok = sorted(d["latency"] for d in rep.get("details", []) if d.get("status") == "OK")
errs = sum(1 for d in rep.get("details", []) if d.get("status") != "OK")
q = lambda p: ok[min(len(ok) - 1, int(p * len(ok)))] / 1e6 if ok else 0
secs = lambda d: float(d[:-1]) * 60 if d.endswith("m") else float(d.rstrip("s"))
stored = (r1 - r0) / (t1 - t0)
total = r2 - r0
cpu_1m = (c2 - c0) / tck / total * 1e6 if total else 0
ghz_1m = sum(map(float, open(gt).read().split()[-2:])) / (len(ok) * int(ev)) * 1e6 if ok else 0
print(json.dumps({
    "run": int(run), "stored_per_s": stored, "raw_per_s": best, "ratio": stored / best,
    "raw_before_per_s": float(raw0), "raw_after_per_s": after,
    "acked_per_s": len(ok) * int(ev) / (t1 - t0),
    "errors": errs, "p50_ms": q(0.5), "p99_ms": q(0.99), "p999_ms": q(0.999),
    "server_p50_ms": server_q(0.5), "server_p99_ms": server_q(0.99),
    "drain_s": t2 - t1, "settle_s": float(settle), "stored_total": total,
    "cpu_s_per_1m": cpu_1m,
    "ch_cpu_s_per_1m": (h2 - h0) / tck / total * 1e6 if total else 0,
    "collector_cores": (c2 - c0) / tck / (t2 - t0),
    "ghz_cores": sum(map(float, open(gt).read().split()[-2:])) / (t1 - t0),
    "ghz_cpu_s_per_1m": ghz_1m,
    # ghz does the same work per event in every run: the collector's CPU
    # in units of ghz's compares runs on a machine whose speed drifts
    # (shared hosts) better than seconds do.
    "cpu_per_ghz": cpu_1m / ghz_1m if ghz_1m else 0,
    "raw_ch_cpu_s_per_1m": (int(rh1) - int(rh0)) / int(tck) / (after * secs(rd)) * 1e6 if raw != "nan" else 0,
    "raw_client_cpu_s_per_1m": sum(map(float, open(rt).read().split()[-2:])) / (after * secs(rd)) * 1e6 if raw != "nan" else 0,
    "cores": int(cores),
    "peak_rss_mib": int(hwm) / 1024, "error_kinds": rep.get("errorDistribution") or {},
}))
EOF
  tail -1 "$results" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("run %(run)d: acked %(acked_per_s).0f events/s, stored %(stored_per_s).0f events/s, best raw %(raw_per_s).0f rows/s "
      "(before the load %(raw_before_per_s).0f, after %(raw_after_per_s).0f), ratio %(ratio).2f; "
      "ack p50/p99/p99.9 %(p50_ms).0f/%(p99_ms).0f/%(p999_ms).0f ms (%(errors)d errors; the collector\x27s own p50/p99 "
      "%(server_p50_ms).0f/%(server_p99_ms).0f ms); collector %(cpu_s_per_1m).1f CPU s per 1M stored (%(collector_cores).2f cores), ClickHouse %(ch_cpu_s_per_1m).1f, ghz %(ghz_cores).2f cores; "
      "peak RSS %(peak_rss_mib).0f MiB; backlog shipped in %(drain_s).1f s, merges done %(settle_s).1f s later" % r)
t = r["ghz_cpu_s_per_1m"] + r["cpu_s_per_1m"] + r["ch_cpu_s_per_1m"]
if t:
    print("  CPU s per 1M events: ghz %.1f + collector %.1f + ClickHouse %.1f = %.1f; %d cores sustain at most %.0f events/s: ratio %.2f at most"
          % (r["ghz_cpu_s_per_1m"], r["cpu_s_per_1m"], r["ch_cpu_s_per_1m"], t, r["cores"], r["cores"] / t * 1e6, r["cores"] / t * 1e6 / r["raw_per_s"]))
    if r["cpu_per_ghz"]:
        print("  collector CPU per event = %.2f x ghz CPU per event" % r["cpu_per_ghz"])
print("  raw insert after the load: ClickHouse %.1f + its client %.1f CPU s per 1M rows" % (r["raw_ch_cpu_s_per_1m"], r["raw_client_cpu_s_per_1m"]))
for k, n in r["error_kinds"].items(): print("  error x%d: %s" % (n, k[:200]))'
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
m = lambda k: statistics.median(r[k] for r in rs)
print("median of %d: stored %.0f events/s, best raw %.0f rows/s, ratio %.2f; ack p50/p99/p99.9 %.0f/%.0f/%.0f ms "
      "(the collector\x27s own p99 %.0f ms); collector %.1f CPU s per 1M stored events, peak RSS %.0f MiB; ClickHouse %.1f CPU s per 1M"
      % (len(rs), m("stored_per_s"), m("raw_per_s"), m("ratio"), m("p50_ms"), m("p99_ms"), m("p999_ms"), m("server_p99_ms"),
         m("cpu_s_per_1m"), m("peak_rss_mib"), m("ch_cpu_s_per_1m")))
print("median CPU s per 1M events: ghz %.1f, collector %.1f, ClickHouse %.1f; raw insert: ClickHouse %.1f + client %.1f per 1M rows"
      % (m("ghz_cpu_s_per_1m"), m("cpu_s_per_1m"), m("ch_cpu_s_per_1m"), m("raw_ch_cpu_s_per_1m"), m("raw_client_cpu_s_per_1m")))
rel = [r["cpu_per_ghz"] for r in rs if r["cpu_per_ghz"]]
if rel:
    print("median collector CPU per event = %.2f x ghz CPU per event" % statistics.median(rel))
EOF
# BENCH_JSON=file keeps the runs' figures, a JSON object a line (used by
# BENCH_RPS=half).
if [ -n "${BENCH_JSON:-}" ]; then cp "$results" "$BENCH_JSON"; fi
