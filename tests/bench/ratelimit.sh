#!/usr/bin/env bash
# Rate limits at the edge (issue 4): the same visor, the same fast Node upstream, the same
# requests, to a route with two rate limits and to one without — so the only difference is
# the rl filter's work (key derivation, one Redis round trip, the headers).
#   none     /api/items   no rate limits
#   redis    /lim/items   rate_limits: [api, user] (10,000,000 per 60 s each: never refusing,
#                         counting every request), Redis store: one round trip per check (a
#                         worker's checks of one event-loop pass share one script call: FCALL,
#                         or EVALSHA on a server without Functions)
#   memory   /lim/items   the same route on a second visor without a redis section
#                         (in-memory store; informational)
# wrk -t1 -cCONNS -dDUR over TLS, keep-alive, ROUNDS interleaved rounds (the order rotates);
# req/s, p50/p99, visor CPU µs per request (utime+stime from /proc), each run's ratio to `none`
# in the same round, Redis CPU µs per request (utime+stime of redis-server), and Redis round
# trips per request from INFO commandstats (script calls — FCALL, EVALSHA, EVAL — and all
# commands, divided by the requests wrk completed). Medians printed.
# Target (issue 14): redis >= 0.95x none; Redis CPU per request half of EVALSHA's.
# Loopback only; every load step is time-bounded; stops what it started (by PID).
# Knobs: ROUNDS=3 DUR=10s CONNS=50 WORKERS=2 PORT_BASE=19600 VISOR_BIN=./visor
#        FUNCTIONS=no: Redis without the FUNCTION command (renamed away), so visor calls the
#        script by EVALSHA, as on Redis 6 — the same bench for the other transport
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(cd "$HERE/../.." && pwd)
RUN=$HERE/run/ratelimit; mkdir -p "$RUN"
ROUNDS=${ROUNDS:-3}; DUR=${DUR:-10s}; FUNCTIONS=${FUNCTIONS:-yes}; CONNS=${CONNS:-50}; WORKERS=${WORKERS:-2}
PB=${PORT_BASE:-19600}; UP=$PB; VIS=$((PB + 1)); VISM=$((PB + 2)); RED=$((PB + 3))
VISOR_BIN=${VISOR_BIN:-$TOP/visor}
. "$HERE/lib.sh"

for t in wrk node openssl redis-server redis-cli curl; do
  command -v $t >/dev/null || { echo "ratelimit.sh: $t is required" >&2; exit 2; }
done
rcli() { timeout 5 redis-cli -p "$RED" "$@"; }
sticks() { awk '{print $15}' "/proc/$1/stat"; }   # system-time ticks alone
# calls of the store script (fcall, evalsha, eval) or of all commands, from INFO commandstats
calls() { rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' -v c="$1" \
  '/^cmdstat_/ { if (c == "all" || $1 ~ /^cmdstat_(fcall|evalsha|eval)$/) s += $3 }
   END { print s + 0 }'; }

# ---- certificate, configs -------------------------------------------------------------------
[ -f "$RUN/ec.crt" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$RUN/ec.key" -out "$RUN/ec.crt" -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
conf() {   # $1 port, $2 redis yes/no
  cat <<VIS
listen: { https: 127.0.0.1:$1 }
workers: $WORKERS
tls: { certificates: [ { cert: $RUN/ec.crt, key: $RUN/ec.key } ] }
upstream: { servers: [127.0.0.1:$UP], keepalive: 64 }
log: { level: warn, access: off }
rate_limits:
  api:  { limit: 10000000, window: 60s, key: ip }
  user: { limit: 10000000, window: 60s, key: user }
routes:
  - path: /lim/
    rate_limits: [api, user]
  - path: /
VIS
  if [ "$2" = yes ]; then printf 'redis: { url: "redis://127.0.0.1:%s/0", timeout: 50ms, on_error: local }\n' "$RED"; fi
}
conf "$VIS" yes > "$RUN/visor.yaml"
conf "$VISM" no > "$RUN/visor-mem.yaml"
"$VISOR_BIN" -t -c "$RUN/visor.yaml"
"$VISOR_BIN" -t -c "$RUN/visor-mem.yaml"

# ---- start ------------------------------------------------------------------------------------
ulimit -n 20000 2>/dev/null || true
RARGS=(); [ "$FUNCTIONS" = no ] && RARGS=(--rename-command FUNCTION '')
redis-server --port "$RED" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning "${RARGS[@]}" \
  > "$RUN/redis.log" 2>&1 & PIDS[redis]=$!
node "$HERE/upstream.js" "$UP" > "$RUN/upstream.log" 2>&1 & PIDS[upstream]=$!
wait_port "$RED"; wait_port "$UP"
"$VISOR_BIN" -c "$RUN/visor.yaml" > "$RUN/visor.out" 2> "$RUN/visor.err" & PIDS[visor]=$!
"$VISOR_BIN" -c "$RUN/visor-mem.yaml" > "$RUN/visor-mem.out" 2> "$RUN/visor-mem.err" & PIDS[visormem]=$!
wait_port "$VIS"; wait_port "$VISM"
for _ in $(seq 1 50); do grep -q '"connected"\|: connected' "$RUN/visor.err" && break; sleep 0.1; done
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p')"
  "$VISOR_BIN" -V | head -1; node --version; redis-server --version; } | tee "$RUN/versions.txt"
# a sanity check: the limited route carries the headers
curl -sk -D - -o /dev/null "https://127.0.0.1:$VIS/lim/items" | grep -i '^ratelimit-limit' || {
  echo "ratelimit.sh: no RateLimit headers on /lim/items" >&2; exit 1; }

declare -A PORTOF=([none]=$VIS [redis]=$VIS [memory]=$VISM)
declare -A PATHOF=([none]=/api/items [redis]=/lim/items [memory]=/lim/items)
declare -A PIDOF=([none]=visor [redis]=visor [memory]=visormem)
wrk_run() { timeout 120 wrk -t1 -c"$CONNS" -d"$1" --latency "https://127.0.0.1:${PORTOF[$2]}${PATHOF[$2]}"; }
echo "[warm-up 3s each]"; for k in none redis memory; do wrk_run 3s "$k" > /dev/null; done
echo "store script calls: $(rcli INFO commandstats | tr -d '\r' | grep -oE '^cmdstat_(fcall|evalsha|eval):calls=[0-9]+' | tr '\n' ' ')"

# ---- throughput -------------------------------------------------------------------------------
echo "[throughput: wrk -t1 -c$CONNS -d$DUR, $ROUNDS interleaved rounds]"
: > "$RUN/rounds.tsv"
runs=(none redis memory)
for r in $(seq 1 "$ROUNDS"); do
  order=("${runs[@]:$(( (r - 1) % 3 ))}" "${runs[@]:0:$(( (r - 1) % 3 ))}")
  for k in "${order[@]}"; do
    pid=${PIDS[${PIDOF[$k]}]}
    e0=$(calls script); a0=$(calls all); t0=$(ticks "$pid"); r0=$(ticks "${PIDS[redis]}"); rs0=$(sticks "${PIDS[redis]}")
    out=$(wrk_run "$DUR" "$k")
    t1=$(ticks "$pid"); r1=$(ticks "${PIDS[redis]}"); rs1=$(sticks "${PIDS[redis]}"); e1=$(calls script); a1=$(calls all)
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
    cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    rcpu=$(awk -v d=$((r1 - r0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    rsys=$(awk -v d=$((rs1 - rs0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    # wrk's count misses the requests still in flight when it stops (< CONNS): exact enough
    ev=$(awk -v d=$((e1 - e0)) -v n="$reqs" 'BEGIN { printf "%.4f", d / n }')
    al=$(awk -v d=$((a1 - a0 - 2)) -v n="$reqs" 'BEGIN { printf "%.4f", d / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$k" "$rps" "$p50" "$p99" "$cpu" "$ev" "$al" "$rcpu" "$errs" >> "$RUN/rounds.tsv"
    echo "  round $r $k: $rps req/s, p50 $p50, p99 $p99, visor ${cpu} µs CPU/req, Redis ${rcpu} µs CPU/req (${rsys} in the kernel), script calls/req $ev, Redis commands/req $al ${errs}"
  done
done

echo
echo "| run | req/s per round | median req/s | ratio to none (median) | p50 | p99 | visor CPU µs/req | Redis CPU µs/req | script calls/req | Redis cmds/req |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for k in none redis memory; do
  per=$(awk -v k=$k '$2==k {printf "%s%.0f", s, $3; s=" / "}' "$RUN/rounds.tsv")
  m=$(awk -v k=$k '$2==k {print $3}' "$RUN/rounds.tsv" | median)
  ratio=$(awk -v k=$k '{v[$1 "," $2] = $3; r[$1] = 1} END {for (x in r) if (v[x ",none"] > 0) print v[x "," k] / v[x ",none"]}' "$RUN/rounds.tsv" | median)
  p50=$(awk -v k=$k '$2==k {v=$4; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else sub(/ms/,"",v); print v}' "$RUN/rounds.tsv" | median)
  p99=$(awk -v k=$k '$2==k {v=$5; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else sub(/ms/,"",v); print v}' "$RUN/rounds.tsv" | median)
  cpu=$(awk -v k=$k '$2==k {print $6}' "$RUN/rounds.tsv" | median)
  ev=$(awk -v k=$k '$2==k {print $7}' "$RUN/rounds.tsv" | median)
  al=$(awk -v k=$k '$2==k {print $8}' "$RUN/rounds.tsv" | median)
  rc=$(awk -v k=$k '$2==k {print $9}' "$RUN/rounds.tsv" | median)
  echo "| $k | $per | $m | $ratio | ${p50} ms | ${p99} ms | $cpu | $rc | $ev | $al |"
done
echo
echo "keys in Redis after the run: $(rcli DBSIZE) ($(rcli --raw MEMORY USAGE visor:rl:api:{127.0.0.1}) bytes for visor:rl:api:{127.0.0.1})"
