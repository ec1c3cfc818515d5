#!/bin/bash
# make container-test: builds the image from ./Dockerfile and tests it with podman, end to end
# (tests/container/test.mjs says what is checked). Called by .ci/run; runs on its own too.
#
# Container engine: podman. On this workplace's machines (no Docker engine, no registry) the
# shared tools/container-env.sh next to the repository prepares podman and a local
# debian:bookworm-slim; it is used when found. Elsewhere, podman as installed (the base image
# is pulled when missing).
#
# Environment:
#   VISOR_CT_TIMEOUT   seconds for the build and the tests together (default 900)
#   VISOR_CT_KEEP=1    keep the temp dir (keys, logs) for a look afterwards
#   VISOR_CT_PRUNE=1   also remove the build cache (dangling image layers) at the end
# Every container, secret and image the run makes carries the run id and is removed at the
# end, whatever happened. The build cache (the layers this run built or reused) is kept so the
# next build takes seconds; what earlier runs left behind is removed; VISOR_CT_PRUNE=1 drops
# this run's cache too (only images labelled visor-ct).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
t0=$(date +%s.%N)
lap() { awk -v a="$t0" -v b="$(date +%s.%N)" -v m="$*" 'BEGIN { printf "container-test: [%6.1fs] %s\n", b - a, m }'; }

[ -f Dockerfile ] || { echo "container-test: no Dockerfile in $REPO" >&2; exit 2; }

# ---- tools ---------------------------------------------------------------------------
missing=""
for t in node openssl redis-server redis-cli; do command -v "$t" >/dev/null 2>&1 || missing="$missing $t"; done
if [ -n "$missing" ]; then
	echo "container-test: missing:$missing; installing the test dependencies" >&2
	tests/tools/install-deps.sh test
fi

env_script=""
for c in "$REPO/../shared/tools/container-env.sh" /work/shared/tools/container-env.sh; do
	if [ -f "$c" ]; then env_script=$c; break; fi
done
if [ -n "$env_script" ]; then
	# prepares podman (runc, cgroupfs, ulimits) and the local base image; first time ~3 min
	envout=$(timeout 900 bash "$env_script") || { echo "container-test: $env_script failed" >&2; exit 2; }
	eval "$envout"
	export VISOR_CT_PULL=never
	lap "podman ready ($env_script)"
elif command -v podman >/dev/null 2>&1; then
	export VISOR_CT_PULL=missing
	lap "podman ready"
else
	echo "container-test: podman is required (Debian: apt-get install podman)" >&2
	exit 2
fi

# ---- run -----------------------------------------------------------------------------
VISOR_CT_RUN=$(date +%s)-$$
export VISOR_CT_RUN
WORK=$(mktemp -d "${TMPDIR:-/tmp}/visor-ct.XXXXXX")
export VISOR_CT_WORK=$WORK VISOR_IT_DIR=$WORK     # the integration harness's PKI goes here too

# Backstop for what test.mjs could not clean (killed by the timeout): by label and name.
cleanup() {
	local rc=$?
	set +e
	for f in redis.pid app.pid; do
		if [ -f "$WORK/$f" ]; then kill "$(cat "$WORK/$f")" 2>/dev/null; fi
	done
	ids=$(podman ps -aq --filter "label=visor-ct=$VISOR_CT_RUN" 2>/dev/null)
	[ -n "$ids" ] && podman rm -f -t 0 $ids >/dev/null 2>&1
	for s in $(podman secret ls --format '{{.Name}}' 2>/dev/null | grep "^visor-ct-$VISOR_CT_RUN-"); do
		podman secret rm "$s" >/dev/null 2>&1
	done
	podman image exists "localhost/visor-ct:$VISOR_CT_RUN" 2>/dev/null && podman rmi -f "localhost/visor-ct:$VISOR_CT_RUN" >/dev/null 2>&1
	if [ "${VISOR_CT_PRUNE:-0}" = 1 ]; then podman image prune -f --filter label=visor-ct >/dev/null 2>&1; fi
	if [ "${VISOR_CT_KEEP:-0}" = 1 ]; then echo "container-test: kept $WORK"; else rm -rf "$WORK"; fi
	left=$(podman ps -aq --filter "label=visor-ct=$VISOR_CT_RUN" 2>/dev/null | wc -l)
	[ "$left" = 0 ] || echo "container-test: WARNING: $left container(s) of this run left behind" >&2
	lap "done (exit $rc)"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

timeout -k 10 "${VISOR_CT_TIMEOUT:-900}" node tests/container/test.mjs
