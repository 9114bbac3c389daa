#!/usr/bin/env bash
# Regenerates the Go code for proto/ with Debian's protoc and the plugins
# pinned as tools in go.mod. Run from anywhere: `make proto`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
go build -o .bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
protoc -I proto \
  --plugin=protoc-gen-go=.bin/protoc-gen-go \
  --plugin=protoc-gen-go-grpc=.bin/protoc-gen-go-grpc \
  --go_out=. --go_opt=module=github.com/consentry/consentry \
  --go-grpc_out=. --go-grpc_opt=module=github.com/consentry/consentry \
  $(find proto -name '*.proto' | sort)
