#!/usr/bin/env bash
# Installs the Debian packages tracecar builds, tests and benchmarks with.
# Idempotent: apt-get runs only for packages that are missing; silent when none are.
# Usage: bash scripts/install-deps.sh
set -euo pipefail
source "$(dirname "$0")/args.sh"
no_arguments install-deps " (it takes none)" "$@"

packages=(
  # toolchain
  cmake ninja-build g++ clang-14 libclang-rt-14-dev pkg-config
  # libraries
  libuv1-dev libnghttp2-dev libssl-dev zlib1g-dev prometheus-cpp-dev
  libcli11-dev libyaml-cpp-dev libabsl-dev node-llhttp
  # tests and benchmarks (protoc decodes OTLP payloads against the official schema)
  libgtest-dev libgmock-dev libbenchmark-dev protobuf-compiler python3
  # the admin server's tests: curl as the client, promtool and a real Prometheus server
  curl prometheus
  # TLS tests: the PKI is made at test time with the openssl command line
  openssl
  # OTLP/gRPC export tests: a grpcio collector (Debian's /usr/bin/python3)
  python3-grpcio python3-protobuf
  # HTTP/2 tests: nghttp and h2load as clients, nginx as an h2c origin
  nghttp2-client nginx
  # transparent mode tests: pods as network namespaces
  iptables iproute2
  # Kubernetes: the chart rendered without helm (Go text/template + Sprig) and its values schema
  # (scripts/image.sh installs the image tools itself)
  golang-1.19-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev python3-yaml
  python3-jsonschema
)
# npm fetches the official OTLP .proto files at test time; Debian's npm only if none is there.
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install-deps: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
