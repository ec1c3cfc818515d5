#!/bin/sh
# Runs the integration suite (node:test) against ./visor, or $VISOR_BIN.
#   VISOR_BIN   the binary (default ./visor, relative to the repo root)
#   VISOR_WRAP  a prefix command, e.g. "valgrind --leak-check=full --error-exitcode=99 --quiet":
#               visor runs under it and a test fails when the wrapper reports errors
#   VISOR_IT_ONLY     space-separated test file names to run (e.g. "core framing"); default: all
#   VISOR_IT_CONCURRENCY  test files run at once where node supports choosing it (default 3)
#   VISOR_IT_DEBUG=1  copy visor's output to stderr;  VISOR_IT_KEEP=1  keep temp dirs
#   extra arguments are passed to node (e.g. --test-name-pattern=TLS)
# Certificates and temp files live in one temp dir per run, removed at the end.
# The last lines printed are node's own summary (# tests / # pass / # fail); the exit code
# is node's: non-zero when any test failed.
cd "$(dirname "$0")/../.." || exit 2

VISOR_IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/visor-it.XXXXXX") || exit 2
export VISOR_IT_DIR
trap 'rm -rf "$VISOR_IT_DIR"' EXIT
trap 'exit 130' INT TERM

if ! command -v node >/dev/null 2>&1; then
  echo "run.sh: node is required (Debian: apt-get install nodejs)" >&2
  exit 2
fi
# Generate the test PKI once for all test files.
node tests/integration/lib/certs.mjs || exit 2

# Explicit file list: directory discovery differs between Node 18 and 20.
if [ -n "${VISOR_IT_ONLY:-}" ]; then
  files=""
  for f in $VISOR_IT_ONLY; do
    f=tests/integration/${f%.test.mjs}.test.mjs
    [ -f "$f" ] || { echo "run.sh: no such test file: $f" >&2; exit 2; }
    files="$files $f"
  done
else
  files=$(ls tests/integration/*.test.mjs)
fi

# Files run in parallel where the runner supports choosing how many (each test allocates
# its own ports); under a wrapper (valgrind) one at a time.
conc=""
if [ -z "$VISOR_WRAP" ] && node --help 2>/dev/null | grep -q -- '--test-concurrency'; then
  conc="--test-concurrency=${VISOR_IT_CONCURRENCY:-3}"
fi

# shellcheck disable=SC2086
node --test --test-reporter=tap $conc "$@" $files
