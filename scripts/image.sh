#!/usr/bin/env bash
# Builds the consentryd container image (deploy/container/Containerfile)
# with buildah: compiles consentryd and consentry statically, puts them
# with the host's CA bundle in a temporary build context, and builds with
# every timestamp at 0, so the same sources give the same image.
# Needs buildah (Debian's package; installed here if missing) and no
# container engine. Prints the image's name and ID.
# Environment: IMAGE (default localhost/consentry/consentryd:dev),
# VERSION (default the git description), REVISION (default the commit).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v buildah >/dev/null 2>&1; then
  echo "image: installing buildah with apt" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq buildah >/dev/null
fi

IMAGE=${IMAGE:-localhost/consentry/consentryd:dev}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT

CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/" ./cmd/consentryd ./cmd/consentry
cp /etc/ssl/certs/ca-certificates.crt "$ctx/"
mkdir "$ctx/state"
cp deploy/container/Containerfile "$ctx/"

buildah bud --quiet --timestamp 0 --layers=false --format oci \
  --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" \
  -f "$ctx/Containerfile" -t "$IMAGE" "$ctx" >/dev/null
echo "$IMAGE $(buildah images --quiet --no-trunc "$IMAGE" | head -1)"
