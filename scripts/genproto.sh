#!/usr/bin/env bash
# Regenerates the Go code for proto/ with Debian's protoc and the plugins
# pinned as tools in go.mod, and the JavaScript SDK's (sdk/js/src/gen) with
# protoc-gen-es pinned in sdk/js; protoc-gen-go-vtproto adds the fast
# MarshalVT/UnmarshalVT the gRPC codec uses (collector/codec.go), and
# memory pools for the ingest request's messages, which the edge returns
# once a request is done (collector/inflight.go) through the hand-written
# IngestRequest.Recycle (proto/consentry/v1/recycle.go): a message added to
# the pools below is recycled only once Recycle knows it. Run from
# anywhere: `make proto`.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "protoc missing: apt-get install -y protobuf-compiler" >&2; exit 1; }
go build -o .bin/ google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc \
  github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto
protoc -I proto \
  --plugin=protoc-gen-go=.bin/protoc-gen-go \
  --plugin=protoc-gen-go-grpc=.bin/protoc-gen-go-grpc \
  --plugin=protoc-gen-go-vtproto=.bin/protoc-gen-go-vtproto \
  --go_out=. --go_opt=module=github.com/consentry/consentry \
  --go-grpc_out=. --go-grpc_opt=module=github.com/consentry/consentry \
  --go-vtproto_out=. --go-vtproto_opt=module=github.com/consentry/consentry,features=marshal+unmarshal+size+pool \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.IngestRequest \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.DeviceContext \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.Event \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.Session \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.Gesture \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.Crash \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.Breadcrumb \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.StackFrame \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.CustomEvent \
  --go-vtproto_opt=pool=github.com/consentry/consentry/proto/consentry/v1.Diagnostic \
  $(find proto -name '*.proto' | sort)

# The JavaScript SDK's message types and JSON codec (sdk/js/src/gen), with
# protoc-gen-es pinned in sdk/js/package-lock.json.
if [ ! -x sdk/js/node_modules/.bin/protoc-gen-es ]; then
  command -v npm >/dev/null || { echo "npm missing (for sdk/js): apt-get install -y npm" >&2; exit 1; }
  npm ci --prefix sdk/js --no-audit --no-fund --loglevel=error >/dev/null
fi
rm -rf sdk/js/src/gen
mkdir -p sdk/js/src/gen
protoc -I proto \
  --plugin=protoc-gen-es=sdk/js/node_modules/.bin/protoc-gen-es \
  --es_out=sdk/js/src/gen --es_opt=target=ts,import_extension=js \
  $(find proto -name '*.proto' | sort)
