#!/bin/sh
# SPDX-License-Identifier: MIT
# Builds every tests/fuzz/fuzz_<target>.c as a libFuzzer binary (clang, ASan + UBSan) against
# libvisor's sources (src/*/*.c but core/main.c) and Debian's llhttp sources, into tests/fuzz/bin/,
# then fuzzes each for FUZZ_SECONDS on its seed corpus tests/fuzz/corpus/<target>/, with
# tests/fuzz/<target>.dict when there is one. A new fuzz_*.c is picked up with no change here.
#
# The committed seed corpora stay small: new inputs go to tests/fuzz/bin/work/<target>/ and
# crashes to tests/fuzz/bin/artifacts/<target>/ (tests/fuzz/bin/ is git-ignored).
#
#   FUZZ_SECONDS=60     seconds per target; 0 only replays the seed corpora (a quick
#                       regression check, e.g. in CI)
#   FUZZ_TARGETS="config units"   only these targets (default: all)
#   FUZZ_ARGS="..."     extra libFuzzer flags (e.g. -jobs=2 -workers=2)
#   CC=clang            the compiler (must support -fsanitize=fuzzer)
# Exit status: 0 when every target built and ran clean, 1 otherwise.
set -eu
cd "$(dirname "$0")/../.."

secs=${FUZZ_SECONDS:-60}
cc=${CC:-clang}
case $cc in cc|gcc|*/gcc) cc=clang ;; esac     # make's default CC cannot build fuzzers
llhttp_src=${LLHTTP_SRC:-/usr/share/llhttp}
llhttp_inc=${LLHTTP_INC:-/usr/share/include/llhttp}
pkgs="libevent libevent_pthreads openssl jansson hiredis yaml-0.1 libnghttp2"
bin=tests/fuzz/bin
obj=$bin/obj

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cflags="-std=c11 -D_GNU_SOURCE -pthread -g -O1 $san -iquote src -I$llhttp_inc $(pkg-config --cflags $pkgs)"
libs="$(pkg-config --libs $pkgs) -lpthread -lm"

mkdir -p "$obj/llhttp"

# Objects: rebuilt when their source, or any header, is newer (headers are few and shared).
newest_h=$(ls -t src/*/*.h 2>/dev/null | head -n 1)
build_obj() {   # src out extra-flags...
	src=$1; out=$2; shift 2
	if [ ! -f "$out" ] || [ "$src" -nt "$out" ] || { [ -n "$newest_h" ] && [ "$newest_h" -nt "$out" ]; }; then
		echo "fuzz: cc $src"
		$cc $cflags "$@" -c -o "$out" "$src"
	fi
}
objs=""
for src in src/*/*.c; do
	[ "$src" = src/core/main.c ] && continue
	d=${src#src/}
	o=$obj/$(dirname "$d")_$(basename "$d" .c).o
	build_obj "$src" "$o" -fsanitize=fuzzer-no-link -DVISOR_VERSION='"fuzz"'
	objs="$objs $o"
done
for src in "$llhttp_src"/*.c; do
	o=$obj/llhttp/$(basename "$src" .c).o
	build_obj "$src" "$o" -fsanitize=fuzzer-no-link -DLLHTTP_STRICT_MODE=1 -w
	objs="$objs $o"
done

targets=${FUZZ_TARGETS:-$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)}
failed=""
for t in $targets; do
	src=tests/fuzz/fuzz_$t.c
	exe=$bin/fuzz_$t
	if [ ! -f "$src" ]; then
		echo "fuzz: no $src" >&2
		failed="$failed $t"
		continue
	fi
	echo "fuzz: link $exe"
	# shellcheck disable=SC2086
	if ! $cc $cflags -fsanitize=fuzzer -o "$exe" "$src" $objs $libs; then
		failed="$failed $t"
		continue
	fi
	corpus=tests/fuzz/corpus/$t
	work=$bin/work/$t
	arts=$bin/artifacts/$t
	mkdir -p "$corpus" "$work" "$arts"
	set -- -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$arts/" -print_final_stats=1
	[ -f "tests/fuzz/$t.dict" ] && set -- "$@" -dict="tests/fuzz/$t.dict"
	log=$bin/$t.log
	if [ "$secs" = 0 ]; then
		echo "fuzz: $t: replaying $corpus"
		# shellcheck disable=SC2086
		"$exe" "$@" -runs=0 ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1 && rc=0 || rc=$?
	else
		echo "fuzz: $t: ${secs}s on $corpus (new inputs in $work)"
		# shellcheck disable=SC2086
		"$exe" "$@" -max_total_time="$secs" ${FUZZ_ARGS:-} "$work" "$corpus" >"$log" 2>&1 && rc=0 || rc=$?
	fi
	grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done ' "$log" | sed "s/^/fuzz: $t: /" || true
	if [ $rc -ne 0 ]; then
		echo "fuzz: $t FAILED (exit $rc); log $log, artifacts in $arts/" >&2
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 20 >&2 || true
		failed="$failed $t"
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: failed:$failed" >&2
	exit 1
fi
echo "fuzz: all targets clean"
