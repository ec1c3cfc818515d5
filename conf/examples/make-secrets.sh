#!/bin/sh
# Development secrets for conf/docker-compose.yml, in conf/examples/secrets/ (git-ignored):
#   tls.crt, tls.key          self-signed ECDSA P-256 certificate for localhost (30 days)
#   jwt.key.pem, jwt.pub.pem  RS256 key pair: sign tokens with the first (tests/tools/mint-jwt.js)
#   redis_password, redis_url a random Redis password, and the URL visor uses
# Existing files are kept (delete them to start over). For development only: in production the
# certificate comes from your CA and the JWT public key from your identity provider.
set -eu
cd "$(dirname "$0")"
mkdir -p secrets
cd secrets
umask 077
if [ ! -s tls.crt ] || [ ! -s tls.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 30 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout tls.key -out tls.crt 2>/dev/null
fi
if [ ! -s jwt.key.pem ]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out jwt.key.pem 2>/dev/null
  openssl pkey -in jwt.key.pem -pubout -out jwt.pub.pem
fi
if [ ! -s redis_password ]; then
  openssl rand -hex 24 > redis_password
  printf 'redis://:%s@redis:6379/0\n' "$(cat redis_password)" > redis_url
fi
# Compose (without swarm) mounts secrets with their file modes: visor (uid 10001) and redis
# (uid 999) must read theirs. World-readable is acceptable for these throw-away dev files only;
# in production make them readable by the container's user alone (chown 10001).
chmod 0644 tls.crt tls.key jwt.pub.pem redis_url redis_password
chmod 0600 jwt.key.pem
ls -l "$PWD"
