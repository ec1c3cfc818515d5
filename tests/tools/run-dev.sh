#!/bin/sh
# `make run`: the demo API on 127.0.0.1:3000 (unless something already listens there), then
# visor in the foreground with conf/visor.yaml (or $VISOR_CONFIG). The demo API is started
# with --exit-with <this pid>; as visor replaces this shell (exec, same pid), the demo API
# exits when visor does, however visor ends.
set -eu
cd "$(dirname "$0")/../.."
config=${VISOR_CONFIG:-conf/visor.yaml}

if [ ! -x ./visor ]; then
  echo "run-dev: ./visor is missing: run make visor" >&2
  exit 1
fi
if [ ! -f "$config" ]; then
  echo "run-dev: $config is missing" >&2
  exit 1
fi

listening() {
  node -e 'require("net").connect(3000, "127.0.0.1").on("connect", () => process.exit(0)).on("error", () => process.exit(1))'
}

if listening; then
  echo "run-dev: something already listens on 127.0.0.1:3000; using it as the upstream" >&2
else
  node tests/tools/demo-upstream.js --host 127.0.0.1 --port 3000 --exit-with $$ &
  up=$!
  i=0
  until listening; do
    i=$((i + 1))
    if [ $i -gt 50 ] || ! kill -0 "$up" 2>/dev/null; then
      echo "run-dev: the demo upstream did not start" >&2
      kill "$up" 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
fi

exec ./visor -c "$config"
