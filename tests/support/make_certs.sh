#!/usr/bin/env bash
# Creates the test PKI in DIR with the openssl command line (EC P-256 keys, valid ten years):
#   ca.pem/ca.key                 test CA
#   server.pem/server.key         signed by ca, SAN DNS:localhost, IP:127.0.0.1, IP:::1
#   client.pem/client.key         signed by ca, extendedKeyUsage clientAuth
#   other-ca.pem/other-ca.key     a CA nobody trusts
#   other-server.pem/other-server.key  signed by other-ca, SAN DNS:localhost
#   wronghost.pem/wronghost.key   signed by ca, SAN DNS:wrong.example only
# Does nothing when DIR/.done exists. Safe to run from several test processes at once: they
# take turns on DIR/.lock.
# Usage: make_certs.sh DIR
set -euo pipefail
dir=${1:?usage: make_certs.sh DIR}

[[ -f $dir/.done ]] && exit 0
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
[[ -f $dir/.done ]] && exit 0  # another process made them while we waited

umask 077
work=$(mktemp -d "$dir/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Our own config, so that the system's openssl.cnf adds no extensions of its own.
cat >"$work/req.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF

newKey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$1.key" 2>/dev/null
}

# newCa NAME COMMON_NAME
newCa() {
  newKey "$1"
  openssl req -x509 -new -config "$work/req.cnf" -extensions ca_ext -key "$work/$1.key" \
    -subj "/CN=$2" -days 3650 -sha256 -out "$work/$1.pem"
}

# newLeaf NAME CA COMMON_NAME EXTENDED_KEY_USAGE [SUBJECT_ALT_NAME]
newLeaf() {
  local name=$1 ca=$2 cn=$3 eku=$4 san=${5:-}
  newKey "$name"
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    [[ -n $san ]] && echo "subjectAltName = $san"
  } >"$work/$name.ext"
  openssl req -new -config "$work/req.cnf" -key "$work/$name.key" -subj "/CN=$cn" \
    -out "$work/$name.csr"
  openssl x509 -req -in "$work/$name.csr" -CA "$work/$ca.pem" -CAkey "$work/$ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -extfile "$work/$name.ext" \
    -out "$work/$name.pem" 2>/dev/null
}

newCa ca "tracecar test CA"
newCa other-ca "tracecar untrusted test CA"
newLeaf server ca localhost serverAuth "DNS:localhost, IP:127.0.0.1, IP:::1"
newLeaf client ca "tracecar test client" clientAuth
newLeaf other-server other-ca localhost serverAuth "DNS:localhost"
newLeaf wronghost ca wrong.example serverAuth "DNS:wrong.example"

for name in ca other-ca server client other-server wronghost; do
  chmod 644 "$work/$name.pem"
  mv -f "$work/$name.pem" "$work/$name.key" "$dir/"
done
touch "$dir/.done"
