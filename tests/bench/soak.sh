#!/usr/bin/env bash
# make soak — one visor under a long, realistic load: does it keep its memory and its file
# descriptors, stay up, and answer only what it should?
#
# Starts, on free loopback ports: the soak Node upstream (soak-upstream.js), a redis-server, and
# visor with TLS, an admin listener, CORS, HS256 JWT on /api/, Redis-backed rate limits (large
# ones that never refuse, and one of 20 per second on /lim/), error scrubbing and scanner
# probes, the access log on (counted by awk, not stored), a body check on the POST route
# (SOAK_BODY_CHECKS=0 leaves it out). Then:
#   - SOAK_REQUESTS (1,000,000) requests with wrk over keep-alive (-cSOAK_CONNS), the mix of
#     soak.lua: proxied 200s, POSTs with a JSON body, a preflight, 401s, 404s, a probe path,
#     429s, and app errors visor scrubs (a 500: the only 5xx expected; a 400 with a stack);
#   - beside it, connection churn: short wrk runs with "Connection: close" (one TLS handshake
#     per request), SOAK_CHURN_ON seconds on, SOAK_CHURN_OFF off;
#   - the requests go in SOAK_SEGMENTS (10) equal segments; after each one the clients are gone
#     and visor is left to settle (no client connection, fd count unchanged for 5 s, so the idle
#     upstream connections have timed out), and its VmRSS and open fds are read there. The
#     first SOAK_WARMUP_PCT (50) % of the requests are the warm-up: the idle point after them is
#     the baseline. Why half: visor's live heap hardly moves (heaptrack over 300k requests after
#     a 300k warm-up: 20 KB allocated and still held, a one-off), but the two workers' glibc
#     arenas keep freed memory and touch more of it for a while: idle RSS +13-17 % from 100k to
#     500k requests, then +0.7-2.5 % from 500k to 1 M (docs/operations.md). Under load,
#     RSS, fds and connections are sampled every second (the peaks are shown), with /healthz
#     and /readyz.
# At the end (visor still running, no client): /metrics, then SIGTERM (drain) and the access
# log's counts. PASS needs: every segment's requests answered; visor alive at the end; RSS at
# the end < baseline + SOAK_RSS_MAX_PCT (5) %; fds at the end = baseline;
# visor_connections_active 0; no 5xx in the access log but the app's 500 on /api/boom (no
# more of them than the app sent, and as many as /metrics counts); a clean exit (0) on
# SIGTERM. Prints a table and a last line "soak: PASS" or "soak: FAIL: <why>", exit 1 on FAIL.
# Stops everything it started (by PID).
# Files: tests/bench/run/soak/ (visor.err, samples.tsv, points.tsv, seg-N.txt, smaps-N.txt,
# churn.log, access-summary.txt, unexpected.log). About 5 minutes on 2 vCPUs.
# Knobs: SOAK_REQUESTS=1000000 SOAK_SEGMENTS=10 SOAK_CONNS=50 SOAK_WORKERS=2
#        SOAK_CHURN_CONNS=4 SOAK_CHURN_ON=3 SOAK_CHURN_OFF=3 (SOAK_CHURN_CONNS=0: no churn)
#        SOAK_WARMUP_PCT=50 SOAK_RSS_MAX_PCT=5 SOAK_SEGMENT_TIMEOUT=600 SOAK_BODY_CHECKS=1
#        VISOR_BIN=./visor (VISOR_BIN=./visor-asan after make asan: LeakSanitizer runs at the exit)
#        SOAK_MALLOC_INFO=1: at each idle point gdb makes visor write glibc's malloc_info() to
#        malloc-N.xml, and the bytes malloc has handed out and not got back ("in use") are shown
#        next to RSS: live data that grows, or only free memory kept inside the arenas
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(cd "$HERE/../.." && pwd)
RUN=$HERE/run/soak; mkdir -p "$RUN"
N=${SOAK_REQUESTS:-1000000}; SEGS=${SOAK_SEGMENTS:-10}; CONNS=${SOAK_CONNS:-50}
WORKERS=${SOAK_WORKERS:-2}
CHURN_CONNS=${SOAK_CHURN_CONNS:-4}; CHURN_ON=${SOAK_CHURN_ON:-3}; CHURN_OFF=${SOAK_CHURN_OFF:-3}
MALLOC_INFO=${SOAK_MALLOC_INFO:-0}; RSS_MAX_PCT=${SOAK_RSS_MAX_PCT:-5}; WARMUP_PCT=${SOAK_WARMUP_PCT:-50}; SEG_TIMEOUT=${SOAK_SEGMENT_TIMEOUT:-600}
VISOR_BIN=${VISOR_BIN:-$TOP/visor}
. "$HERE/lib.sh"

for t in wrk node openssl redis-server redis-cli curl awk; do
  command -v $t >/dev/null || { echo "soak.sh: $t is required" >&2; exit 2; }
done
[ -x "$VISOR_BIN" ] || { echo "soak.sh: no visor binary at $VISOR_BIN (make visor)" >&2; exit 2; }
# the warm-up: the first WSEG segments (SOAK_WARMUP_PCT of the requests, rounded, at least one)
WSEG=$(( (SEGS * WARMUP_PCT + 50) / 100 )); [ "$WSEG" -ge 1 ] || WSEG=1
[ "$SEGS" -ge 2 ] && [ "$N" -ge "$SEGS" ] && [ "$WSEG" -lt "$SEGS" ] || {
  echo "soak.sh: SOAK_SEGMENTS >= 2, SOAK_REQUESTS >= SOAK_SEGMENTS, SOAK_WARMUP_PCT leaving a segment after it" >&2; exit 2; }
rm -f "$RUN"/seg-*.txt "$RUN"/smaps-*.txt "$RUN"/malloc-*.xml "$RUN"/churn.log "$RUN"/churn.stop "$RUN"/access.fifo "$RUN"/*.tsv \
  "$RUN"/access-summary.txt "$RUN"/unexpected.log

# ---- ports, certificate, secret, tokens, config ---------------------------------------------
# five free ports from the kernel (held together, then released)
read -r UP RED VIS VISH ADM < <(node -e '
const net = require("node:net"), s = [];
for (let i = 0; i < 5; i++) { const x = net.createServer(); s.push(x);
  x.listen(0, "127.0.0.1", () => { if (s.every((y) => y.address())) {
    console.log(s.map((y) => y.address().port).join(" ")); s.forEach((y) => y.close()); } }); }')
[ -f "$RUN/ec.crt" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$RUN/ec.key" -out "$RUN/ec.crt" -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
openssl rand -hex 32 > "$RUN/jwt.secret"
# HS256 tokens (node:crypto): a valid one (1 day) and one signed with another secret
{ read -r TOKEN; read -r BADTOKEN; } < <(node -e '
const c = require("node:crypto"), fs = require("node:fs");
const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url"), t = Math.floor(Date.now() / 1000);
const tok = (sec) => { const i = b({ alg: "HS256", typ: "JWT" }) + "." +
  b({ iss: "https://auth.soak", aud: "api.soak", sub: "soak-user", iat: t, exp: t + 86400 });
  return i + "." + c.createHmac("sha256", sec).update(i).digest("base64url"); };
console.log(tok(fs.readFileSync(process.argv[1], "utf8").trim())); console.log(tok("not-the-secret"));' "$RUN/jwt.secret")
# Body checks (routes[].body) on the POST route unless SOAK_BODY_CHECKS=0.
BODY_RULE=""; [ "${SOAK_BODY_CHECKS:-1}" = 1 ] && BODY_RULE=", body: { max_size: 64k }"
cat > "$RUN/visor.yaml" <<VIS
listen: { https: 127.0.0.1:$VIS, http: 127.0.0.1:$VISH, admin: 127.0.0.1:$ADM }
workers: $WORKERS
tls: { certificates: [ { cert: $RUN/ec.crt, key: $RUN/ec.key } ] }
upstream: { servers: [127.0.0.1:$UP], keepalive: 64 }
log: { level: info, access: stdout }
cors: { origins: [https://app.example.com], credentials: true }
redis: { url: "redis://127.0.0.1:$RED/0", timeout: 50ms, on_error: local }
jwt:
  algorithms: [HS256]
  keys: [ { secret_file: $RUN/jwt.secret } ]
  issuer: https://auth.soak
  audience: api.soak
  claims_to_headers: { sub: X-User-Id }
rate_limits:
  api:   { limit: 1000000000, window: 60s, key: ip }
  user:  { limit: 1000000000, window: 60s, key: user }
  tight: { limit: 20, window: 1s, key: ip }
routes:
  - { path: /api/orders, methods: [POST], auth: required, rate_limits: [api, user]$BODY_RULE }
  - { path: /api/, auth: required, rate_limits: [api, user] }
  - { path: /pub/, auth: off, rate_limits: [api] }
  - { path: /lim/, auth: off, rate_limits: [tight] }
errors: { scrub: [500-599], stack_traces: true }
probes: { paths: [/.env, /.git/, /wp-admin], ban_after: 1000000, ban_for: 10s }
VIS
"$VISOR_BIN" -t -c "$RUN/visor.yaml"

# ---- start -------------------------------------------------------------------------------------
ulimit -n 20000 2>/dev/null || true
redis-server --port "$RED" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning \
  > "$RUN/redis.log" 2>&1 & PIDS[redis]=$!
node "$HERE/soak-upstream.js" "$UP" > "$RUN/upstream.log" 2>&1 & PIDS[upstream]=$!
wait_port "$RED"; wait_port "$UP"
# The access log goes through a FIFO to awk, which keeps counts only: status by path, security
# events by kind, and (the first 200 of) the lines with an unexpected status, for evidence.
mkfifo "$RUN/access.fifo"
awk -v unexp="$RUN/unexpected.log" '
  /"type":"access"/ {
    n++; s = match($0, /"status":[0-9]+/) ? substr($0, RSTART + 9, RLENGTH - 9) : "?"
    p = match($0, /"path":"[^"]*"/) ? substr($0, RSTART + 8, RLENGTH - 9) : "?"
    c[s "\t" p]++
    if ((s + 0 >= 500 && !(s == "500" && p == "/api/boom")) || s == "403" || s == "?") if (u++ < 200) print > unexp
    next }
  /"type":"security"/ { e = match($0, /"event":"[^"]*"/) ? substr($0, RSTART + 9, RLENGTH - 10) : "?"; ev[e]++; next }
  { other++; if (u++ < 200) print > unexp }
  END { printf "lines\t%d\n", n; for (k in c) printf "status\t%s\t%d\n", k, c[k]
        for (k in ev) printf "event\t%s\t%d\n", k, ev[k]; printf "other\t%d\n", other }' \
  < "$RUN/access.fifo" > "$RUN/access-summary.txt" & PIDS[accesslog]=$!
"$VISOR_BIN" -c "$RUN/visor.yaml" > "$RUN/access.fifo" 2> "$RUN/visor.err" & PIDS[visor]=$!
VPID=${PIDS[visor]}
wait_port "$VIS"; wait_port "$ADM"
for _ in $(seq 1 50); do grep -q 'connected' "$RUN/visor.err" && break; sleep 0.1; done
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p')"
  "$VISOR_BIN" -V | head -2 | tr '\n' ' '; echo; echo "node $(node --version), $(redis-server --version | cut -d' ' -f1-3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "ports: https $VIS, http $VISH, admin $ADM, upstream $UP, redis $RED"; } | tee "$RUN/versions.txt"

# ---- helpers ------------------------------------------------------------------------------------
B="https://127.0.0.1:$VIS"
rss() { awk '$1=="VmRSS:" {print $2}' "/proc/$VPID/status" 2>/dev/null || echo 0; }
# VmRSS of each mapping (smaps): its path, [heap], [stack], or anon@<start> for an anonymous one
smaps_rss() { awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, a, "-"); k = (NF >= 6 ? $6 : "anon@" a[1]) }
  $1 == "Rss:" { r[k] += $2 } END { for (x in r) print x "\t" r[x] }' "$1"; }
fds() { ls "/proc/$VPID/fd" 2>/dev/null | wc -l; }
# open fds by kind: socket, pipe, anon_inode:[eventfd], file ...
fd_kinds() { for f in /proc/"$VPID"/fd/*; do readlink "$f" 2>/dev/null || true; done |
  sed -E 's/:\[[0-9]+\]$//; s#^/.*#file#' | sort | uniq -c | awk '{printf "%s%s=%s", s, $2, $1; s=" "}'; }
alive() { kill -0 "$VPID" 2>/dev/null && ! grep -q '^State:.*[ZX]' "/proc/$VPID/status" 2>/dev/null; }
# SOAK_MALLOC_INFO=1: glibc's malloc_info() of the live process, written by visor itself (gdb
# calls it; a fraction of a second, at an idle point); prints "in-use-kB free-in-arenas-kB"
malloc_info() {
  [ "$MALLOC_INFO" = 1 ] || { echo "- -"; return; }
  timeout 60 gdb -p "$VPID" -batch -nx -ex "set \$f = (void *) fopen(\"$1\", \"w\")" \
    -ex 'call (int) malloc_info(0, $f)' -ex 'call (int) fclose($f)' > "$RUN/gdb.log" 2>&1 || true
  # the totals after the last </heap>: in use = arenas' system bytes - free chunks + mmapped
  awk -F'"' '/<\/heap>/ { fast = rest = mm = sys = 0; next }
    /<total type="fast"/ { fast = $6 } /<total type="rest"/ { rest = $6 } /<total type="mmap"/ { mm = $6 }
    /<system type="current"/ { sys = $4 }
    END { if (sys) printf "%d %d\n", (sys - fast - rest + mm) / 1024, (fast + rest) / 1024; else print "? ?" }' "$1" 2>/dev/null || echo "? ?"
}
METRICS=""
scrape() { METRICS=$(curl -s -m 5 "http://127.0.0.1:$ADM/metrics" || true); }
metric() { awk -v m="$1" '$1==m {v=$2} END {print (v == "" ? "?" : v)}' <<<"$METRICS"; }
code() { curl -sk -m 5 -o /dev/null -w '%{http_code}' "$@" || true; }
secs() { date +%s.%N; }

# ---- sanity: each kind of request of the mix gets its answer ------------------------------------
echo "[sanity: one request of each kind]"
fails=""
expect() { local want=$1 got; shift; got=$(code "$@"); [ "$got" = "$want" ] || fails="$fails [$* -> $got, want $want]"; }
AUTH="Authorization: Bearer $TOKEN"
expect 200 -H "$AUTH" "$B/api/items"
expect 200 "$B/pub/items"
expect 200 -H "$AUTH" -H 'Content-Type: application/json' -d '{"sku":"A"}' "$B/api/orders"
expect 204 -X OPTIONS -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: POST' "$B/api/orders"
expect 401 "$B/api/items"
expect 401 -H "Authorization: Bearer $BADTOKEN" "$B/api/items"
expect 404 "$B/nope"
expect 404 "$B/.env"
expect 500 -H "$AUTH" "$B/api/boom"
expect 400 -H "$AUTH" "$B/api/leak"
expect 200 "http://127.0.0.1:$ADM/healthz"
expect 200 "http://127.0.0.1:$ADM/readyz"
expect 301 "http://127.0.0.1:$VISH/api/items"
curl -sk -H "$AUTH" "$B/api/boom" | grep -q TypeError && fails="$fails [/api/boom body not scrubbed]"
curl -sk -D - -o /dev/null -H "$AUTH" "$B/api/items" | grep -qi '^x-powered-by' && fails="$fails [X-Powered-By not removed]"
lim=$(curl -sk -w '%{http_code}\n' $(for _ in $(seq 1 30); do echo "-o /dev/null $B/lim/items"; done) | sort | uniq -c | tr -s ' \n' ' ')
grep -q ' 429' <<<"$lim" || fails="$fails [/lim/items x30 gave no 429: $lim]"
[ -z "$fails" ] || { echo "soak.sh: sanity checks failed (000: no answer within 5 s):$fails" >&2; exit 1; }
echo "  ok (30 x /lim/items:$lim)"

# ---- the soak ---------------------------------------------------------------------------------------
churn_loop() {   # short "Connection: close" wrk runs until $RUN/churn.stop exists
  local cw=""
  trap '[ -n "$cw" ] && kill "$cw" 2>/dev/null; exit 0' TERM
  while [ ! -e "$RUN/churn.stop" ]; do
    timeout $((CHURN_ON + 30)) wrk -t1 -c"$CHURN_CONNS" -d"${CHURN_ON}s" -s "$HERE/soak.lua" "$B/" \
      -- "$TOKEN" "$BADTOKEN" 0 close >> "$RUN/churn.log" 2>&1 & cw=$!
    wait "$cw" || true; cw=""
    for _ in $(seq 1 $((CHURN_OFF * 10))); do [ -e "$RUN/churn.stop" ] && break; sleep 0.1; done
  done
}
# waits until no client connection is open and the fd count has not moved for 5 s (idle upstream
# connections time out after upstream.idle_timeout, 4 s); at most 60 s
settle() {
  local last=-1 stable=0 f a i
  for i in $(seq 1 120); do
    sleep 0.5; f=$(fds); scrape; a=$(metric visor_connections_active)
    if [ "$a" = 0 ] && [ "$f" = "$last" ]; then stable=$((stable + 1)); else stable=0; fi
    last=$f; [ $stable -ge 10 ] && return 0
  done
  echo "  (not settled after 60 s: connections_active $a, fds $f)"
}

printf 't\tsegment\trss_kb\tfds\tconns_active\tconns_total\n' > "$RUN/samples.tsv"
printf 'segment\trequests\treq_s\tnew_conns\trss_kb\tfds\tpeak_rss_kb\tpeak_fds\tpeak_conns\tfd_kinds\tmalloc_in_use_kb\tmalloc_free_kb\n' > "$RUN/points.tsv"
FAILS=""; DONE=0; T0=$(secs); LOAD_S=0; TICK0=$(ticks "$VPID")
PER=$((N / SEGS))
echo "[soak: $N requests in $SEGS segments (the first $WSEG: warm-up), wrk -t1 -c$CONNS keep-alive;" \
  "churn: wrk -c$CHURN_CONNS Connection: close, ${CHURN_ON}s on / ${CHURN_OFF}s off]"
scrape; CT_PREV=$(metric visor_connections_total)
for s in $(seq 1 "$SEGS"); do
  q=$PER; [ "$s" = "$SEGS" ] && q=$((N - PER * (SEGS - 1)))
  rm -f "$RUN/churn.stop"
  if [ "$CHURN_CONNS" -gt 0 ]; then churn_loop & PIDS[churn]=$!; fi
  ts=$(secs)
  timeout $((SEG_TIMEOUT + 30)) wrk -t1 -c"$CONNS" -d"${SEG_TIMEOUT}s" -s "$HERE/soak.lua" "$B/" \
    -- "$TOKEN" "$BADTOKEN" "$q" > "$RUN/seg-$s.txt" 2>&1 & PIDS[wrk]=$!
  prss=0; pfds=0; pconn=0
  while kill -0 "${PIDS[wrk]}" 2>/dev/null; do
    sleep 1
    if ! alive; then FAILS="$FAILS visor died in segment $s;"; break; fi
    r=$(rss); f=$(fds); scrape; a=$(metric visor_connections_active)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(awk -v a="$T0" -v b="$(secs)" 'BEGIN {printf "%.1f", b - a}')" \
      "$s" "$r" "$f" "$a" "$(metric visor_connections_total)" >> "$RUN/samples.tsv"
    [ "$r" -gt "$prss" ] && prss=$r; [ "$f" -gt "$pfds" ] && pfds=$f
    [ "$a" != "?" ] && [ "$a" -gt "$pconn" ] && pconn=$a
    [ "$(code "http://127.0.0.1:$ADM/healthz")" = 200 ] || echo "  segment $s: /healthz did not answer 200"
    [ "$(code "http://127.0.0.1:$ADM/readyz")" = 200 ] || echo "  segment $s: /readyz did not answer 200"
  done
  wait "${PIDS[wrk]}" || true; unset 'PIDS[wrk]'
  LOAD_S=$(awk -v a="$LOAD_S" -v t="$ts" -v b="$(secs)" 'BEGIN {print a + b - t}')
  touch "$RUN/churn.stop"
  if [ -n "${PIDS[churn]:-}" ]; then wait "${PIDS[churn]}" || true; unset 'PIDS[churn]'; fi
  alive || { FAILS="$FAILS visor died in segment $s;"; break; }
  got=$(awk '/requests in/ {print $1}' "$RUN/seg-$s.txt"); got=${got:-0}
  rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$RUN/seg-$s.txt")
  DONE=$((DONE + got))
  if [ "$got" -lt "$q" ]; then   # wrk's -d ran out: something hangs; no point going on
    FAILS="$FAILS segment $s: $got of $q requests answered in ${SEG_TIMEOUT}s;"
    echo "  segment $s/$SEGS: only $got of $q requests answered in ${SEG_TIMEOUT}s; stopping"; break
  fi
  settle
  scrape; ct=$(metric visor_connections_total); newc=$((ct - CT_PREV)); CT_PREV=$ct
  r=$(rss); f=$(fds); k=$(fd_kinds)
  cp "/proc/$VPID/smaps" "$RUN/smaps-$s.txt" 2>/dev/null || true
  read -r mu mf < <(malloc_info "$RUN/malloc-$s.xml")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$DONE" "$rps" "$newc" "$r" "$f" "$prss" "$pfds" "$pconn" "$k" "$mu" "$mf" >> "$RUN/points.tsv"
  [ "$s" = 1 ] && FIRST_RSS=$r
  [ "$s" = "$WSEG" ] && { BASE_RSS=$r; BASE_FDS=$f; BASE_KINDS=$k; }
  echo "  segment $s/$SEGS: $got requests, ${rps} req/s, $newc new connections; idle: RSS $r kB, $f fds" \
    "($([ -n "${BASE_RSS:-}" ] && awk -v a="$r" -v b="$BASE_RSS" 'BEGIN {printf "%+.2f%% vs baseline", (a - b) * 100 / b}' || echo warm-up)); under load: peak RSS $prss kB, $pfds fds, $pconn connections$([ "$MALLOC_INFO" = 1 ] && echo "; malloc: $mu kB in use, $mf kB free in the arenas")"
done
T1=$(secs)

# ---- the end: visor idle and still running ---------------------------------------------------------
END_RSS=$(rss); END_FDS=$(fds); END_KINDS=$(fd_kinds)
cp "/proc/$VPID/smaps" "$RUN/smaps-end.txt" 2>/dev/null || true
scrape; END_METRICS=$METRICS
ACTIVE=$(metric visor_connections_active)
HEALTH=$(code "http://127.0.0.1:$ADM/healthz")
ALIVE=no; alive && [ "$HEALTH" = 200 ] && ALIVE=yes
UPSTATS=$(curl -s -m 5 "http://127.0.0.1:$UP/__soak/stats" || echo '{}')
UP500=$(node -e 'const o = JSON.parse(process.argv[1]); console.log(o["500"] || 0)' "$UPSTATS")
REDIS_INFO="$(timeout 5 redis-cli -p "$RED" DBSIZE) keys, $(timeout 5 redis-cli -p "$RED" INFO memory | tr -d '\r' | sed -n 's/^used_memory_human://p') used"
VCPU=$(awk -v d=$(($(ticks "$VPID") - TICK0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", d / hz}')
# drain: SIGTERM, exit code; then the access log is complete
kill -TERM "$VPID" 2>/dev/null || true
EXIT=0; wait "$VPID" || EXIT=$?; unset 'PIDS[visor]'
wait "${PIDS[accesslog]}" || true; unset 'PIDS[accesslog]'

# ---- report -------------------------------------------------------------------------------------------
AS=$RUN/access-summary.txt
st() { awk -F'\t' -v s="$1" '$1=="status" && $2==s {n += $4} END {print n + 0}' "$AS"; }
FIVE=$(awk -F'\t' '$1=="status" && $2 >= 500 {n += $4} END {print n + 0}' "$AS")
BOOM=$(awk -F'\t' '$1=="status" && $2 == 500 && $3 == "/api/boom" {n += $4} END {print n + 0}' "$AS")
UNEXP5=$((FIVE - BOOM))
M5=$(awk '$1=="visor_requests_total{class=\"5xx\"}" {print $2}' <<<"$END_METRICS")
CHURN_REQS=$(awk '/requests in/ {n += $1} END {print n + 0}' "$RUN/churn.log" 2>/dev/null || echo 0)
DUR=$(awk -v a="$T0" -v b="$T1" 'BEGIN {printf "%.0f", b - a}')

echo
echo "| point | keep-alive requests | req/s | new connections | idle RSS kB | vs baseline | idle fds | peak RSS kB (load) | peak fds (load) | peak connections |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -F'\t' -v b="${BASE_RSS:-0}" -v w="$WSEG" 'NR > 1 { name = ($1 < w ? $1 " (warm-up)" : $1 == w ? $1 " (warm-up end: baseline)" : $1)
  printf "| %s | %d | %s | %d | %d | %+.2f%% | %d | %d | %d | %d |\n", name, $2, $3, $4, $5, b ? ($5 - b) * 100 / b : 0, $6, $7, $8, $9 }' "$RUN/points.tsv"
[ "$MALLOC_INFO" = 1 ] && echo && echo "malloc in use / free inside the arenas, kB, by point: $(awk -F'\t' 'NR > 1 {printf "%s%s: %s / %s", s, $1, $11, $12; s = ", "}' "$RUN/points.tsv")"
echo
echo "duration: ${DUR} s (load ${LOAD_S%.*} s, the rest is settling); keep-alive requests: $DONE" \
  "($(awk -v n="$DONE" -v t="$LOAD_S" 'BEGIN {printf "%.0f", n / t}') req/s over the load time);" \
  "churn: $CHURN_REQS requests on new connections; visor CPU: ${VCPU} s"
echo "statuses (access log, $(awk -F'\t' '$1=="lines" {print $2}' "$AS") lines):" \
  "$(awk -F'\t' '$1=="status" {n[$2] += $4} END {for (s in n) print s "=" n[s]}' "$AS" | sort | tr '\n' ' ')"
echo "security events: $(awk -F'\t' '$1=="event" {print $2 "=" $3}' "$AS" | sort | tr '\n' ' ')"
echo "5xx: $FIVE in the access log ($BOOM the app's 500 on /api/boom, which answered $UP500 of them), $M5 in /metrics"
echo "metrics at the end: $(for m in visor_connections_active visor_connections_total visor_tls_handshake_failures_total \
  visor_rate_limited_total visor_scrubbed_total visor_probes_total visor_redis_errors_total \
  visor_upstream_connect_failures_total; do printf '%s=%s ' "${m#visor_}" "$(awk -v m=$m '$1==m {print $2}' <<<"$END_METRICS")"; done)"
echo "redis at the end: $REDIS_INFO"
echo "fds: baseline ${BASE_FDS:-?} (${BASE_KINDS:-}), end $END_FDS ($END_KINDS)"
echo "RSS: first idle point (segment 1) ${FIRST_RSS:-?} kB, baseline (segment $WSEG) ${BASE_RSS:-?} kB, end $END_RSS kB" \
  "($(awk -v a="$END_RSS" -v b="${FIRST_RSS:-0}" 'BEGIN {if (b) printf "%+.2f%%", (a - b) * 100 / b; else printf "?"}') vs the first idle point)"
[ -f "$RUN/smaps-$WSEG.txt" ] && echo "RSS change baseline -> end by mapping (smaps, the largest; anon@ are malloc arenas and thread stacks): $(
  awk -F'\t' 'FNR == NR { b[$1] = $2; next } { d[$1] = $2 - b[$1]; delete b[$1] } END { for (k in b) d[k] = -b[k]
    for (k in d) if (d[k] != 0) print (d[k] < 0 ? -d[k] : d[k]) "\t" k "\t" d[k] }' \
    <(smaps_rss "$RUN/smaps-$WSEG.txt") <(smaps_rss "$RUN/smaps-end.txt") | sort -rn | head -5 |
  awk -F'\t' '{ printf "%s%s %+d kB", s, $2, $3; s = ", " }')"
echo "visor stderr: $(wc -l < "$RUN/visor.err") lines; not info:"
grep -v '"level":"info"' "$RUN/visor.err" | sed -E 's/"time":"[^"]*",//; s/[0-9a-f]{32}/<id>/g' | sort | uniq -c | sort -rn | head -10 | sed 's/^/    /' || true
echo "SIGTERM: exit $EXIT ($(grep -c '"msg":"stopped"' "$RUN/visor.err" || true) \"stopped\" line)"

[ "$DONE" -ge "$N" ] || FAILS="$FAILS $DONE of $N requests answered;"
[ "$ALIVE" = yes ] || FAILS="$FAILS visor not alive at the end (healthz $HEALTH);"
growth=?
if [ -n "${BASE_RSS:-}" ]; then
  growth=$(awk -v a="$END_RSS" -v b="$BASE_RSS" 'BEGIN {printf "%.2f", (a - b) * 100 / b}')
  awk -v g="$growth" -v m="$RSS_MAX_PCT" 'BEGIN {exit !(g < m)}' || FAILS="$FAILS RSS grew $growth% (limit $RSS_MAX_PCT%);"
  [ "$END_FDS" = "$BASE_FDS" ] || FAILS="$FAILS fds $END_FDS at the end, baseline $BASE_FDS ($((END_FDS - BASE_FDS)));"
else
  FAILS="$FAILS no baseline (the warm-up did not complete);"
fi
[ "$ACTIVE" = 0 ] || FAILS="$FAILS visor_connections_active $ACTIVE at the end;"
[ "$UNEXP5" = 0 ] || FAILS="$FAILS $UNEXP5 unexpected 5xx (see $RUN/unexpected.log);"
[ "$BOOM" -le "$UP500" ] || FAILS="$FAILS $BOOM 500s on /api/boom but the app sent $UP500;"
[ "$M5" = "$FIVE" ] || FAILS="$FAILS 5xx: $FIVE in the access log, ${M5:-?} in /metrics;"
[ "$EXIT" = 0 ] || FAILS="$FAILS exit $EXIT on SIGTERM;"
echo
echo "checks: RSS growth $growth% (< $RSS_MAX_PCT%), fds $END_FDS vs ${BASE_FDS:-?}, connections_active $ACTIVE," \
  "alive $ALIVE, unexpected 5xx $UNEXP5, SIGTERM exit $EXIT"
if [ -z "$FAILS" ]; then echo "soak: PASS"; else echo "soak: FAIL:$FAILS"; exit 1; fi
