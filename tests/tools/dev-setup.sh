#!/bin/sh
# Development key material for `make run`, created only when missing (idempotent):
#   conf/tls/dev.crt, conf/tls/dev.key        self-signed ECDSA P-256 certificate for
#                                             localhost and 127.0.0.1, valid 825 days
#   conf/keys/jwt.key.pem, conf/keys/jwt.pub.pem   RS256 key pair for dev tokens
# All of these are git-ignored; never use them outside a developer machine.
set -eu
cd "$(dirname "$0")/../.."
mkdir -p conf/tls conf/keys
umask 077

if [ ! -s conf/tls/dev.crt ] || [ ! -s conf/tls/dev.key ]; then
  tmp=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 825 \
    -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$tmp/dev.key" -out "$tmp/dev.crt" 2>/dev/null
  chmod 644 "$tmp/dev.crt"
  mv "$tmp/dev.key" conf/tls/dev.key
  mv "$tmp/dev.crt" conf/tls/dev.crt
  rmdir "$tmp"
  echo "dev-setup: created conf/tls/dev.crt and conf/tls/dev.key (self-signed, localhost/127.0.0.1, 825 days)"
fi

if [ ! -s conf/keys/jwt.key.pem ] && [ ! -s conf/keys/jwt.pub.pem ]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out conf/keys/jwt.key.pem.tmp 2>/dev/null
  mv conf/keys/jwt.key.pem.tmp conf/keys/jwt.key.pem
  echo "dev-setup: created conf/keys/jwt.key.pem (RS256 dev signing key)"
fi
if [ -s conf/keys/jwt.key.pem ] && [ ! -s conf/keys/jwt.pub.pem ]; then
  openssl pkey -in conf/keys/jwt.key.pem -pubout -out conf/keys/jwt.pub.pem.tmp
  chmod 644 conf/keys/jwt.pub.pem.tmp
  mv conf/keys/jwt.pub.pem.tmp conf/keys/jwt.pub.pem
  echo "dev-setup: created conf/keys/jwt.pub.pem"
fi
if [ ! -s conf/keys/jwt.key.pem ]; then
  echo "dev-setup: conf/keys/jwt.pub.pem exists without its private key: mint-jwt.js cannot sign for it" >&2
fi

echo 'dev-setup: dev token: curl -k -H "Authorization: Bearer $(node tests/tools/mint-jwt.js)" https://localhost:8443/api/items   (mint-jwt.js --help for claims)'
