#!/usr/bin/env bash
# Builds tests/chart/render offline from Debian's Go packages (golang-1.19-go,
# golang-github-masterminds-sprig-dev, golang-k8s-sigs-yaml-dev): GOPATH mode over
# /usr/share/gocode, with the two /v3 import paths Sprig uses linked into a GOPATH of our own.
# Usage: build_renderer.sh OUTPUT WORKDIR
set -euo pipefail
out=${1:?usage: build_renderer.sh OUTPUT WORKDIR}
work=${2:?usage: build_renderer.sh OUTPUT WORKDIR}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/render" && pwd)
gocode=/usr/share/gocode/src
go=$(command -v go-1.19 || command -v go || true)
[[ -x /usr/lib/go-1.19/bin/go ]] && go=/usr/lib/go-1.19/bin/go
if [[ -z $go || ! -d $gocode/github.com/Masterminds/sprig || ! -d $gocode/sigs.k8s.io/yaml ]]; then
  echo "build_renderer: needs golang-1.19-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev" >&2
  exit 1
fi
mkdir -p "$work/src/github.com/Masterminds/sprig" "$work/src/github.com/Masterminds/semver"
ln -sfn "$gocode/github.com/Masterminds/sprig" "$work/src/github.com/Masterminds/sprig/v3"
ln -sfn "$gocode/github.com/Masterminds/semver" "$work/src/github.com/Masterminds/semver/v3"
cd "$src"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOCACHE="$work/cache" GOFLAGS= GOPROXY=off \
  "$go" build -o "$out" .
