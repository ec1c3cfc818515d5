#!/bin/sh
# Installs what visor needs to build, run and test, on Debian 12, when missing.
# Idempotent: does nothing (and needs no root) when everything is already there.
# Usage: tests/tools/install-deps.sh [build|test|bench]
set -eu
what=${1:-test}
pkgs="make gcc libc6-dev pkg-config libevent-dev libssl-dev libjansson-dev libhiredis-dev libyaml-dev node-llhttp libnghttp2-dev openssl ca-certificates"
case $what in
  build) ;;
  run)   pkgs="$pkgs nodejs curl" ;;
  test)  pkgs="$pkgs nodejs redis-server curl procps haproxy nghttp2-client" ;;
  bench) pkgs="$pkgs nodejs redis-server curl procps nginx wrk nghttp2-client" ;;
  fuzz)  pkgs="$pkgs clang libclang-rt-dev" ;;
  *) echo "usage: $0 build|run|test|bench|fuzz" >&2; exit 2 ;;
esac
missing=""
for p in $pkgs; do
  # nodejs may come from elsewhere (nodesource, nvm): a working `node` is enough
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing Debian packages:$missing (run as root, or install them)" >&2
  exit 1
fi
echo "install-deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
