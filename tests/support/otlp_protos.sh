#!/usr/bin/env bash
# Puts the official OTLP .proto files (opentelemetry/proto/...) in DEST, fetching them from the
# npm registry (@opentelemetry/otlp-grpc-exporter-base@0.38.0, build/protos) when missing.
# Safe to run from several test processes at once: they take turns on DEST.lock.
# Usage: otlp_protos.sh DEST
set -euo pipefail
dest=${1:?usage: otlp_protos.sh DEST}
package=@opentelemetry/otlp-grpc-exporter-base@0.38.0
marker=$dest/opentelemetry/proto/collector/trace/v1/trace_service.proto

[[ -f $marker ]] && exit 0
mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
[[ -f $marker ]] && exit 0  # another process fetched them while we waited

tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$package" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp" package/build/protos
rm -rf "$dest"
mv "$tmp/package/build/protos" "$dest"
