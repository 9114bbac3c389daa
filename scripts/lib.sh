# Helpers the scripts share; they source it from the repository root:
#   . scripts/lib.sh

# build_bin: installs what Consentry needs (scripts/deps.sh) and builds
# consentryd and consentry into .bin/.
build_bin() {
  ./scripts/deps.sh
  go build -o .bin/ ./cmd/consentryd ./cmd/consentry
}

# wait_until TRIES PID LOG COMMAND...: runs COMMAND every half second until
# it succeeds, at most TRIES times, while the process PID it waits for
# runs. If PID ends first, prints LOG to stderr and exits 1. After TRIES
# failed tries it returns all the same: the caller's next step fails on
# what is missing.
wait_until() {
  local tries=$1 pid=$2 log=$3
  shift 3
  for _ in $(seq 1 "$tries"); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.5
  done
}
