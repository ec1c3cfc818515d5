#!/usr/bin/env bash
# tlsio bench: bufferevent_openssl (A) vs raw SSL_read/SSL_write (B), plus nginx as a
# reference.  Builds both servers, makes a throw-away ECDSA P-256 cert, measures idle
# memory per keep-alive connection, CPU per request under wrk, user-space instructions
# per request (callgrind) and syscalls per request (strace); writes run/results/.
#
#   tests/bench/tlsio/run.sh [all|mem|cpu|instr|sys|summary]
#   env: ROUNDS=3 (main comparisons)  VROUNDS=1 (variants)  DUR=10s  N=2000  PORT=18443
#        QUICK=1 (main comparisons only, one round)
#        NICE=-10 (CPU runs: nice level for server and wrk when root, so that other jobs on
#        a shared 2-core box disturb less; NICE=0 to disable)
#
# Everything runs on 127.0.0.1, is bounded in time/count, and every process this
# script starts is stopped by pid when it exits.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
cd "$HERE"
RUN=$HERE/run
RES=$RUN/results
PORT=${PORT:-18443}
ROUNDS=${ROUNDS:-3}
VROUNDS=${VROUNDS:-1}
DUR=${DUR:-10s}
N=${N:-2000}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then ROUNDS=1; VROUNDS=0; fi
WHAT=${1:-all}
NICE=${NICE:--10}
[ "$(id -u)" = 0 ] || NICE=0

SPID=""
HELPERS=()
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null || true
    for p in "${HELPERS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '[tlsio] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- set-up
need_pkgs=()
command -v cc >/dev/null || need_pkgs+=(gcc make)
command -v pkg-config >/dev/null || need_pkgs+=(pkg-config)
pkg-config --exists libevent_openssl 2>/dev/null || need_pkgs+=(libevent-dev)
pkg-config --exists openssl 2>/dev/null || need_pkgs+=(libssl-dev)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v wrk >/dev/null || need_pkgs+=(wrk)
command -v valgrind >/dev/null || need_pkgs+=(valgrind)
command -v strace >/dev/null || need_pkgs+=(strace)
command -v nginx >/dev/null || need_pkgs+=(nginx-light)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        log "installing ${need_pkgs[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
    else
        log "missing packages: ${need_pkgs[*]} (apt-get install them)"; exit 1
    fi
fi

make -s -C "$HERE"
mkdir -p "$RES" "$RUN/nginx/tmp"
ulimit -n 65536 2>/dev/null || ulimit -n 16384 2>/dev/null || true
if [ ! -s "$RUN/cert.pem" ]; then
    # Throw-away key for loopback only; never committed (run/ is ignored).
    openssl ecparam -name prime256v1 -genkey -noout -out "$RUN/key.pem"
    openssl req -new -x509 -key "$RUN/key.pem" -out "$RUN/cert.pem" -days 7 -subj /CN=localhost 2>/dev/null
fi
{
    echo "date: $(date -u +%FT%TZ)"; echo "kernel: $(uname -r)"; echo "cpus: $(nproc)"
    grep -m1 'model name' /proc/cpuinfo || true
    echo "openssl: $(openssl version)"; echo "libevent: $(pkg-config --modversion libevent)"
    echo "node: $(node --version)"; echo "wrk: $(wrk -v 2>&1 | head -1)"; echo "nginx: $(nginx -v 2>&1)"
    echo "glibc: $(ldd --version | head -1)"
} > "$RES/env.txt"

# nginx reference: same cert, same 329-byte body, one process.
write_nginx_conf() {
    local body
    body=$("$RUN/srv_raw" --print-body)
    cat > "$RUN/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1; worker_rlimit_nofile 16384;
error_log $RUN/nginx/error.log warn; pid $RUN/nginx/nginx.pid;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path $RUN/nginx/tmp; proxy_temp_path $RUN/nginx/tmp;
  fastcgi_temp_path $RUN/nginx/tmp; uwsgi_temp_path $RUN/nginx/tmp; scgi_temp_path $RUN/nginx/tmp;
  keepalive_timeout 600s; keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$PORT ssl;
    ssl_certificate $RUN/cert.pem; ssl_certificate_key $RUN/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { default_type application/json; return 200 '$body'; }
  }
}
EOF
}
write_nginx_conf

wait_port() {
    for _ in $(seq 1 100); do
        ss -ltn "sport = :$PORT" 2>/dev/null | grep -q LISTEN && return 0
        kill -0 "$SPID" 2>/dev/null || { log "server died"; return 1; }
        sleep 0.05
    done
    log "server did not listen"; return 1
}

# start KIND [args...]; KIND = A | B | nginx.  Env: PIN (taskset cpu), PRE (command prefix)
start() {
    local kind=$1; shift
    local pin=()
    [ -n "${PIN:-}" ] && pin=(nice -n "$NICE" taskset -c "$PIN")
    if ss -ltn "sport = :$PORT" | grep -q LISTEN; then log "port $PORT busy"; exit 1; fi
    case $kind in
        A) env ${ENVV:-} ${PRE:-} "${pin[@]}" "$RUN/srv_bev" -p "$PORT" -c "$RUN/cert.pem" -k "$RUN/key.pem" "$@" 2>>"$RES/server.log" & ;;
        B) env ${ENVV:-} ${PRE:-} "${pin[@]}" "$RUN/srv_raw" -p "$PORT" -c "$RUN/cert.pem" -k "$RUN/key.pem" "$@" 2>>"$RES/server.log" & ;;
        nginx) env ${ENVV:-} "${pin[@]}" nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e stderr 2>>"$RES/server.log" & ;;
    esac
    SPID=$!
    wait_port
}
stop() {
    [ -n "$SPID" ] || return 0
    kill "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
    SPID=""
    for _ in $(seq 1 100); do ss -ltn "sport = :$PORT" | grep -q LISTEN || break; sleep 0.05; done
}

# ----------------------------------------------------------------- memory
# mem LABEL CONC KIND [args...]
mem() {
    local label=$1 conc=$2 kind=$3; shift 3
    local sig=SIGUSR1 extra=()
    [ "$kind" = nginx ] && sig=none || extra=(--stats "$RUN/stats.json")
    start "$kind" "${extra[@]}" "$@"
    node "$HERE/memclient.mjs" --port "$PORT" --pid "$SPID" --n "$N" --conc "$conc" \
        --stats "$RUN/stats.json" --sig "$sig" --label "$label" --settle 1200 >> "$RES/mem.jsonl"
    stop
    log "mem $label: $(tail -1 "$RES/mem.jsonl" | cut -c1-200)"
}

run_mem() {
    : > "$RES/mem.jsonl"
    for r in $(seq 1 "$ROUNDS"); do
        mem "A bufferevent_openssl" 50 A
        mem "B raw (evbuf)" 50 B
        mem "nginx 1.22 (reference)" 50 nginx
    done
    for _ in $(seq 1 "$VROUNDS"); do
        mem "A --no-release-buffers" 50 A --no-release-buffers
        mem "B --no-release-buffers" 50 B --no-release-buffers
        mem "B --no-release-buffers --trim 500" 50 B --no-release-buffers --trim 500
        mem "B --no-release-buffers --lazy-release 250 --trim 500" 50 B --no-release-buffers --lazy-release 250 --trim 500
        mem "A --ignore-eof (SSL_OP_IGNORE_UNEXPECTED_EOF)" 50 A --ignore-eof
        mem "B --rbuf shared" 50 B --rbuf shared
        mem "B --rbuf conn (4K malloc per read, freed)" 50 B --rbuf conn
        mem "B --rbuf keep (4K per conn kept)" 50 B --rbuf keep
        mem "B --no-tickets" 50 B --no-tickets
        mem "B --cache off" 50 B --cache off
        mem "B --no-tickets --cache off" 50 B --no-tickets --cache off
        mem "B --suites AES_128_GCM" 50 B --suites TLS_AES_128_GCM_SHA256
        mem "B --suites CHACHA20_POLY1305" 50 B --suites TLS_CHACHA20_POLY1305_SHA256
        mem "B --read-ahead" 50 B --read-ahead
        ENVV="MALLOC_ARENA_MAX=1" mem "B MALLOC_ARENA_MAX=1" 50 B
        mem "A conc=500" 500 A
        mem "B conc=500" 500 B
        mem "B conc=500 --trim 500" 500 B --trim 500
        mem "B sites (per-allocation-site breakdown)" 50 B --sites
    done
}

# -------------------------------------------------------------------- CPU
# cpu LABEL ROUND KIND [args...]   server pinned to CPU 0, wrk to CPU 1
cpu() {
    local label=$1 round=$2 kind=$3; shift 3
    PIN=0 start "$kind" "$@"
    # warm the server's caches and the allocator before measuring
    taskset -c 1 wrk -t1 -c50 -d1s "https://127.0.0.1:$PORT/" >/dev/null 2>&1 || true
    local st0 st1 ns0 ns1 out load
    load=$(cut -d' ' -f1 /proc/loadavg)
    st0=$(awk '{print $14+$15}' "/proc/$SPID/stat"); ns0=$(awk '{print $1}' "/proc/$SPID/schedstat")
    out=$(nice -n "$NICE" taskset -c 1 wrk -t1 -c50 -d"$DUR" "https://127.0.0.1:$PORT/" 2>&1)
    st1=$(awk '{print $14+$15}' "/proc/$SPID/stat"); ns1=$(awk '{print $1}' "/proc/$SPID/schedstat")
    stop
    local wf; wf="$RES/wrk.$(echo "$label" | tr -c 'A-Za-z0-9' _ | tr -s _).$round.txt"
    echo "$out" > "$wf"
    python3 - "$label" "$round" "$st0" "$st1" "$ns0" "$ns1" "$(getconf CLK_TCK)" "$wf" "$load" >> "$RES/cpu.jsonl" <<'PY'
import json, re, sys
label, rnd, st0, st1, ns0, ns1, hz, wf, load = sys.argv[1:10]
out = open(wf).read()
reqs = int(re.search(r'(\d+) requests in', out).group(1))
rps = float(re.search(r'Requests/sec:\s*([\d.]+)', out).group(1))
lat = re.search(r'Latency\s+(\S+)', out).group(1)
errs = re.search(r'Socket errors:.*', out)
non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
cpu_s = (int(st1) - int(st0)) / int(hz)
print(json.dumps({"label": label, "round": int(rnd), "reqs": reqs, "rps": rps, "lat_avg": lat,
    "cpu_s": round(cpu_s, 2), "us_per_req": round(cpu_s * 1e6 / reqs, 2),
    "us_per_req_sched": round((int(ns1) - int(ns0)) / 1e3 / reqs, 2),
    "errors": errs.group(0) if errs else "", "non2xx": int(non2xx.group(1)) if non2xx else 0, "loadavg_before": float(load)}))
PY
    log "cpu $label round $round: $(tail -1 "$RES/cpu.jsonl")"
}

run_cpu() {
    : > "$RES/cpu.jsonl"
    for r in $(seq 1 "$ROUNDS"); do
        cpu "A bufferevent_openssl" "$r" A
        cpu "B raw (evbuf)" "$r" B
        cpu "B raw + read_ahead, shared rbuf" "$r" B --read-ahead --rbuf shared
        cpu "nginx 1.22 (reference)" "$r" nginx
    done
    for r in $(seq 1 "$VROUNDS"); do
        cpu "A --copy (bufferevent_write)" "$r" A --copy
        cpu "A --changelist" "$r" A --changelist
        cpu "B --drain (SSL_read until WANT_READ)" "$r" B --drain
        cpu "B --no-release-buffers" "$r" B --no-release-buffers
        cpu "B --no-release-buffers --lazy-release 250" "$r" B --no-release-buffers --lazy-release 250
        cpu "B --suites CHACHA20_POLY1305" "$r" B --suites TLS_CHACHA20_POLY1305_SHA256
        cpu "B --rbuf shared" "$r" B --rbuf shared
        cpu "B --read-ahead" "$r" B --read-ahead
    done
}

# ------------------------------------------------------- instructions/req
# instr LABEL KIND [args...]: callgrind Ir of 10 conns x 100 vs x 1100 requests; the
# difference / 10000 is the steady-state user-space cost of one request.
instr() {
    local label=$1 kind=$2; shift 2
    local tag; tag=$(echo "$label" | tr -c 'A-Za-z0-9' _)
    for reqs in 100 1100; do
        PRE="valgrind --tool=callgrind --callgrind-out-file=$RUN/cg.$tag.$reqs.out --log-file=$RUN/cg.$tag.$reqs.log" \
            start "$kind" "$@"
        node "$HERE/reqclient.mjs" --port "$PORT" --conns 10 --reqs "$reqs" >/dev/null
        stop
    done
    python3 "$HERE/cgsplit.py" "$RUN/cg.$tag.100.out" "$RUN/cg.$tag.1100.out" 10000 |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"label": sys.argv[1], "ir": d}))' "$label" \
        >> "$RES/instr.jsonl"
    log "instr $label: $(tail -1 "$RES/instr.jsonl")"
}

run_instr() {
    : > "$RES/instr.jsonl"
    instr "A bufferevent_openssl" A
    instr "B raw (evbuf)" B
    instr "B raw + read_ahead, shared rbuf" B --read-ahead --rbuf shared
    [ "$VROUNDS" -gt 0 ] && instr "B --no-release-buffers" B --no-release-buffers
    return 0
}

# ------------------------------------------------------------ syscalls/req
sys_one() {
    local label=$1 kind=$2; shift 2
    start "$kind" --stats "$RUN/stats.json" "$@"
    local r0 r1
    kill -USR1 "$SPID"; sleep 0.2; r0=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["reqs"])' "$RUN/stats.json")
    strace -c -p "$SPID" -o "$RUN/strace.txt" 2>/dev/null & local sp=$!
    HELPERS+=("$sp")
    sleep 0.5
    wrk -t1 -c50 -d3s "https://127.0.0.1:$PORT/" >/dev/null 2>&1 || true
    kill -INT "$sp" 2>/dev/null || true; wait "$sp" 2>/dev/null || true
    kill -USR1 "$SPID"; sleep 0.2; r1=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["reqs"])' "$RUN/stats.json")
    stop
    python3 - "$label" "$((r1 - r0))" "$RUN/strace.txt" >> "$RES/sys.jsonl" <<'PY'
import json, sys
label, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls = {}
for line in open(path):
    p = line.split()
    if len(p) >= 5 and p[-1].isidentifier() and p[-1] != 'total' and p[3].isdigit():
        calls[p[-1]] = round(int(p[3]) / max(n, 1), 3)
print(json.dumps({"label": label, "reqs": n, "per_req": dict(sorted(calls.items(), key=lambda kv: -kv[1]))}))
PY
    log "sys $label: $(tail -1 "$RES/sys.jsonl")"
}

run_sys() {
    : > "$RES/sys.jsonl"
    sys_one "A bufferevent_openssl" A
    sys_one "B raw (evbuf)" B
    sys_one "B raw + read_ahead, shared rbuf" B --read-ahead --rbuf shared
    sys_one "B --drain" B --drain
    # bufferevent_openssl + read_ahead: a request that arrives in the same read as the
    # client's Finished sits in OpenSSL's buffer and nobody reads it (20 fresh curls).
    local k hung
    for k in A B; do
        start "$k" --read-ahead
        hung=0
        for _ in $(seq 1 20); do curl -sk -m 1 -o /dev/null "https://127.0.0.1:$PORT/" || hung=$((hung + 1)); done
        stop
        echo "{\"label\": \"$k --read-ahead: fresh connections whose first request got no answer within 1 s\", \"hang\": \"$hung of 20\"}" >> "$RES/sys.jsonl"
        log "$k --read-ahead: $hung of 20 first requests hung"
    done
}

case $WHAT in
    all) run_mem; run_cpu; run_instr; run_sys ;;
    mem) run_mem ;;
    cpu) run_cpu ;;
    instr) run_instr ;;
    sys) run_sys ;;
    summary) ;;
    *) echo "usage: $0 [all|mem|cpu|instr|sys|summary]" >&2; exit 2 ;;
esac
python3 "$HERE/summarize.py" "$RES" | tee "$RES/summary.md"
