#!/usr/bin/env bash
# make cluster: runs Consentry scaled out on this machine. Starts a ClickHouse
# cluster (`consentry cluster`: ZooKeeper from Debian's zookeeper package and
# 2 shards x 2 replicas of ClickHouse on loopback ports) under
# $CONSENTRY_CLUSTER_DIR (default ./consentry-cluster), two collectors
# (consentryd --clickhouse-cluster), each with its own data dir and spool and
# sharing the signing key and consent secret, writing through the replicas of
# one shard each; sends a fleet of simulated devices through both with
# client-side round robin; prints how to connect; and, from a terminal,
# keeps everything up until Ctrl-C, which stops it all (set
# CONSENTRY_CLUSTER_EXIT=1 not to wait). Data stays in the folder.
# CONSENTRY_CLUSTER_LOAD=1m also drives both collectors with consentry load
# for that long and reports events/s acknowledged and stored, and the CPU
# time the collectors and the ClickHouse servers spent per event (the
# capacity model in docs/operations.md). The load's devices are all unlike:
# with k-anonymity on, their rows are held back in the private database;
# CONSENTRY_CLUSTER_GENERALIZE_K=1 (consentryd --generalize-k) stores them
# in the event tables and their aggregates, as a real fleet's mostly are.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
build_bin

dir=${CONSENTRY_CLUSTER_DIR:-consentry-cluster}
mkdir -p "$dir/shared"
chmod 700 "$dir"
rm -f "$dir/clickhouse.addrs"
pids=()
cleanup() {
  # Collectors first (they flush into the cluster), then the cluster.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      kill -TERM "${pids[$i]}"
      wait "${pids[$i]}" || true
    fi
  done
}
trap cleanup EXIT

echo "== starting the ClickHouse cluster under $dir (log: $dir/cluster.log)"
.bin/consentry cluster --dir "$dir" >"$dir/cluster.log" 2>&1 &
pids+=($!)
wait_until 240 "${pids[0]}" "$dir/cluster.log" test -f "$dir/clickhouse.addrs"
[ -f "$dir/clickhouse.addrs" ] || { echo "the cluster did not start; see $dir/cluster.log" >&2; exit 1; }
IFS=, read -r -a servers <"$dir/clickhouse.addrs"

# accepts HOST:PORT: whether something accepts TCP connections there.
accepts() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

collectors=()
for i in 0 1; do
  grpc=127.0.0.1:$((4790 + 10 * i))
  http=127.0.0.1:$((4791 + 10 * i))
  admin=127.0.0.1:$((4792 + 10 * i))
  echo "== starting collector $i on $grpc, writing through ${servers[2 * i]} and ${servers[2 * i + 1]} (log: $dir/collector$i.log)"
  .bin/consentryd --grpc-addr "$grpc" --http-addr "$http" --admin-addr "$admin" --data-dir "$dir/collector$i" \
    --clickhouse-cluster consentry --clickhouse-addr "${servers[2 * i]},${servers[2 * i + 1]}" \
    --clickhouse-user collector --clickhouse-password-file "$dir/clickhouse-collector-password" \
    --consent-signing-key-file "$dir/shared/consent-signing-key.pem" --consent-secret-file "$dir/shared/consent-secret" \
    ${CONSENTRY_CLUSTER_GENERALIZE_K:+--generalize-k "$CONSENTRY_CLUSTER_GENERALIZE_K"} \
    --log-format console >"$dir/collector$i.log" 2>&1 &
  pids+=($!)
  collectors+=("$grpc")
  # The first collector makes the shared key and secret and the schema;
  # the second starts once it serves.
  wait_until 240 "${pids[-1]}" "$dir/collector$i.log" accepts "$grpc"
done

echo "== sending a fleet of simulated devices through both collectors (client-side round robin)"
.bin/consentry fleet --addr "${collectors[0]},${collectors[1]}" --devices "${CONSENTRY_FLEET_DEVICES:-40}" \
  --clickhouse-cluster consentry --clickhouse-addr "${servers[0]}" --clickhouse-user collector \
  --clickhouse-password-file "$dir/clickhouse-collector-password" --data-dir "$dir/collector0"

echo "== collectors (gRPC, round robin over both): ${collectors[0]},${collectors[1]}"
echo "   e.g. .bin/consentry load --addr ${collectors[0]},${collectors[1]} --admin-addr '' --data-dir $dir/collector0 --duration 30s"
echo "== crash triage dashboards: http://127.0.0.1:4792/ and http://127.0.0.1:4802/ (users: $dir/collector*/dashboard-credentials)"
echo "== ClickHouse servers (shard by shard): ${servers[*]}"
echo "== analysts: clickhouse-client --port ${servers[0]#*:} --user analyst --password \"\$(cat $dir/clickhouse-analyst-password)\""
echo "== operators: clickhouse-client --port ${servers[0]#*:} --user collector --password \"\$(cat $dir/clickhouse-collector-password)\""
# cpu_seconds PID...: CPU time (user + system) the processes used so far.
cpu_seconds() {
  local ticks=0 pid f
  for pid in "$@"; do
    # Fields after the command's closing parenthesis: utime is the 12th, stime the 13th.
    f=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null) || continue
    set -- $f
    ticks=$((ticks + ${12} + ${13}))
    set --
  done
  echo "$ticks $(getconf CLK_TCK)" | awk '{printf "%.1f", $1 / $2}'
}
if [ -n "${CONSENTRY_CLUSTER_LOAD:-}" ]; then
  # The ClickHouse servers are the cluster process's clickhouse children.
  ch_pids=()
  for pid in $(ps --ppid "${pids[0]}" -o pid=); do
    grep -q clickhouse "/proc/$pid/cmdline" 2>/dev/null && ch_pids+=("$pid")
  done
  col_before=$(cpu_seconds "${pids[1]}" "${pids[2]}")
  ch_before=$(cpu_seconds "${ch_pids[@]}")
  echo "== load through both collectors for $CONSENTRY_CLUSTER_LOAD (consentry load --count-stored)"
  .bin/consentry load --addr "${collectors[0]},${collectors[1]}" --admin-addr 127.0.0.1:4792 --duration "$CONSENTRY_CLUSTER_LOAD" \
    --clients "${CONSENTRY_CLUSTER_LOAD_CLIENTS:-32}" --count-stored --consent-signing-key-file "$dir/shared/consent-signing-key.pem" \
    --clickhouse-cluster consentry --clickhouse-addr "${servers[0]}" --clickhouse-user collector \
    --clickhouse-password-file "$dir/clickhouse-collector-password" --data-dir "$dir/collector0" | tee "$dir/load.txt"
  stored=$(sed -n 's/^stored \([0-9]*\) events.*/\1/p' "$dir/load.txt")
  col_cpu=$(awk -v a="$(cpu_seconds "${pids[1]}" "${pids[2]}")" -v b="$col_before" 'BEGIN {print a - b}')
  ch_cpu=$(awk -v a="$(cpu_seconds "${ch_pids[@]}")" -v b="$ch_before" 'BEGIN {print a - b}')
  # CPU time per event, not wall-clock rates: the load generator, ZooKeeper
  # and whatever else runs here share the cores.
  awk -v n="${stored:-0}" -v col="$col_cpu" -v ch="$ch_cpu" -v servers="${#ch_pids[@]}" 'BEGIN {
    printf "== CPU for %d events stored: collectors %.1f s (%.0f events per collector core-second), ", n, col, n / col
    printf "ClickHouse %.1f s on %d servers: a shard and its replicas store %.0f events per core-second of theirs\n", ch, servers, n / ch
  }'
fi
if [ -t 0 ] && [ -z "${CONSENTRY_CLUSTER_EXIT:-}" ]; then
  echo "== everything keeps running; press Ctrl-C to stop it"
  trap 'echo; cleanup; exit 0' INT TERM
  wait "${pids[0]}" || true
fi
echo "== stopping the collectors and the cluster"
cleanup
trap - EXIT
echo "== done; data and logs in $dir"
