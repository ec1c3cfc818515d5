#!/bin/sh
# make test: C unit tests, then the integration suite; exit 1 if either failed.
# Prints the unit tests' summary line again at the very end so both counts sit in the last lines.
cd "$(dirname "$0")/.." || exit 1
out=$(mktemp); trap 'rm -f "$out"' EXIT
tests/unit/run.sh "$@" | tee "$out"; u=$?
ures=$(tail -n 1 "$out")
tests/integration/run.sh; i=$?
echo "unit tests: $ures"
echo "$ures"
[ $u -eq 0 ] && [ $i -eq 0 ]
