# Consentry's developer commands. See README.md.
.PHONY: run cluster test test-short proto check-generated build image bench bench-ghz load soak abuse privacy fuzz clean

# Runs the collector end to end on a local default: installs ClickHouse if
# missing, starts consentryd (which starts ClickHouse), sends a demo batch,
# prints what landed, simulates a fleet of devices, and (from a terminal)
# keeps the collector up for the dashboard until Ctrl-C.
run:
	./scripts/run-demo.sh

# Runs Consentry scaled out on this machine: ZooKeeper and 2 shards x 2
# replicas of ClickHouse on loopback ports, two collectors, a fleet of
# devices through both; prints how to connect; Ctrl-C stops everything.
# Data in consentry-cluster (CONSENTRY_CLUSTER_DIR). See docs/operations.md.
cluster:
	./scripts/cluster.sh

# Runs every test, installing and starting what the tests need.
test:
	./scripts/test.sh

# Unit tests only: no servers, no installs.
test-short:
	go test -short -count=1 ./...

build:
	go build -o .bin/ ./cmd/...

# The container image (deploy/container/Containerfile), built with buildah:
# IMAGE=registry.example.com/consentryd:1.0 make image. See deploy/README.md.
image:
	./scripts/image.sh

proto:
	./scripts/genproto.sh

check-generated:
	./scripts/check-generated.sh

# End-to-end throughput against the raw ClickHouse ceiling; see docs/benchmarks.md.
bench:
	./scripts/bench.sh

# End to end with an independent load generator (ghz) against consentryd
# and its managed ClickHouse, spool on, beside the best raw insert ceiling
# of the same run (BENCH_RUNS, BENCH_DURATION, BENCH_RPS, BENCH_PROFILE;
# see scripts/bench-ghz.sh and docs/benchmarks.md).
bench-ghz:
	./scripts/bench-ghz.sh

# Sustained load with the spool on and off (LOAD_DURATION, default 3m);
# see docs/operations.md.
load:
	./scripts/load.sh

# The soak: the real consentryd under load for SOAK_DURATION (default 10m)
# while a chaos schedule kills and stops processes, fills the spool's
# volume and flips a bit in it; prints acked, stored, lost, duplicated,
# aggregate overcount and the longest refusal. Needs root (tmpfs).
SOAK_DURATION ?= 10m
soak:
	./scripts/deps.sh
	go test -tags soak -run TestSoak -count=1 -timeout 60m -v ./collector/ -args -soak.duration=$(SOAK_DURATION)

# The abuse suite (docs/operations.md, "Threat model"): every attack an
# unauthenticated client can make on the ingest ports (decode bombs over
# gRPC and HTTP, slow headers and bodies, 2,000 idle connections,
# oversized, deeply nested and random messages, key guessing) against the
# real consentryd and its managed ClickHouse, on loopback, ABUSE_DURATION
# each (default 12s; about 4 minutes in all) while well-behaved clients
# keep sending; prints per attack the collector's peak RSS against its
# stated bound, the clients' p99 and refusals, and health.
ABUSE_DURATION ?= 12s
abuse:
	./scripts/deps.sh
	go test -tags abuse -run TestAbuse -count=1 -timeout 30m -v ./internal/abuse/ -args -abuse.duration=$(ABUSE_DURATION)

# The adversarial privacy test's long form (docs/privacy.md): seeds 1, 2, 3
# and a random one, 3000 planted identifiers each, against the real
# consentryd and ClickHouse; prints what was planted and found where, and
# fails on any finding, known gaps included. make test runs its short form.
# PRIVACY_ARGS adds flags, e.g. PRIVACY_ARGS="-privacy.seeds=7
# -privacy.out=privacy-report" (reports and JSON findings in a folder).
PRIVACY_ARGS ?=
privacy:
	./scripts/deps.sh
	go test -run 'TestAdversarialPrivacy' -count=1 -timeout 60m -v ./internal/privacyprobe/ -args -privacy.long $(PRIVACY_ARGS)

# Fuzzes every fuzz test for FUZZ_TIME each (default 30s, about 15
# minutes in all), or those whose package or name matches FUZZ_MATCH;
# make test runs their seed corpora only.
FUZZ_TIME ?= 30s
FUZZ_MATCH ?= .
fuzz:
	FUZZ_TIME=$(FUZZ_TIME) FUZZ_MATCH='$(FUZZ_MATCH)' ./scripts/fuzz.sh

clean:
	rm -rf .bin consentry-data consentry-cluster
