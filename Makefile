# Consentry's developer commands. See README.md.
.PHONY: run test test-short proto check-generated build bench load fuzz clean

# Runs the collector end to end on a local default: installs ClickHouse if
# missing, starts consentryd (which starts ClickHouse), sends a demo batch,
# prints what landed, simulates a fleet of devices, and (from a terminal)
# keeps the collector up for the dashboard until Ctrl-C.
run:
	./scripts/run-demo.sh

# Runs every test, installing and starting what the tests need.
test:
	./scripts/test.sh

# Unit tests only: no servers, no installs.
test-short:
	go test -short -count=1 ./...

build:
	go build -o .bin/ ./cmd/...

proto:
	./scripts/genproto.sh

check-generated:
	./scripts/check-generated.sh

# End-to-end throughput against the raw ClickHouse ceiling; see docs/benchmarks.md.
bench:
	./scripts/bench.sh

# Sustained load with the spool on and off (LOAD_DURATION, default 3m);
# see docs/operations.md.
load:
	./scripts/load.sh

clean:
	rm -rf .bin consentry-data
