#!/usr/bin/env bash
# make bench — visor against nginx (Debian's), both terminating TLS in front of the same fast
# Node upstream, same worker count (2), keep-alive, the same answer (HSTS + helmet's headers,
# X-Powered-By hidden, as in shared/peers), measured in the same run:
#   1. keep-alive throughput: wrk -t1 -cCONNS -dDUR GET /api/items, ROUNDS interleaved rounds
#      (start peer alternates), req/s, p50/p99, server CPU µs/request (utime+stime from /proc);
#   2. memory: IDLE_N idle keep-alive TLS connections, Δ VmRSS per connection;
#   3. HTTP/2: h2load -c50 -m10 (H2_DUR, ROUNDS interleaved rounds) and IDLE_N idle h2
#      connections (one GET each), same peers (nginx: `listen ... ssl http2`), same policy.
# Prints per-round figures, medians and the visor/nginx ratios. Loopback only; every load
# step is time-bounded; stops everything it started (by PID).
# Knobs: ROUNDS=3 DUR=10s CONNS=50 IDLE_N=2000 PORT_BASE=19400 VISOR_BIN=./visor
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(cd "$HERE/../.." && pwd)
RUN=$HERE/run; mkdir -p "$RUN"
ROUNDS=${ROUNDS:-3}; DUR=${DUR:-10s}; H2_DUR=${H2_DUR:-10}; CONNS=${CONNS:-50}; IDLE_N=${IDLE_N:-2000}
PB=${PORT_BASE:-19400}; UP=$((PB)); NGX=$((PB + 1)); VIS=$((PB + 2)); VISH=$((PB + 3))
VISOR_BIN=${VISOR_BIN:-$TOP/visor}
. "$HERE/lib.sh"

rss_kb() { local s=0 p; for p in "$@"; do s=$((s + $(awk '$1=="VmRSS:"{print $2}' /proc/$p/status))); done; echo $s; }
pids_of() { case $1 in nginx) echo "${PIDS[nginx]} $(pgrep -P "${PIDS[nginx]}" | tr '\n' ' ')";; visor) echo "${PIDS[visor]}";; esac; }

# ---- certificates and configs -------------------------------------------------------
[ -f "$RUN/ec.crt" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$RUN/ec.key" -out "$RUN/ec.crt" -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
mkdir -p "$RUN/ngx"
cat > "$RUN/nginx.conf" <<NGX
worker_processes 2;
worker_rlimit_nofile 20000;
pid $RUN/nginx.pid;
error_log $RUN/nginx-error.log warn;
events { worker_connections 10000; }
http {
  access_log off; server_tokens off;
  client_body_temp_path $RUN/ngx/body; proxy_temp_path $RUN/ngx/proxy; fastcgi_temp_path $RUN/ngx/fcgi;
  uwsgi_temp_path $RUN/ngx/uwsgi; scgi_temp_path $RUN/ngx/scgi;
  keepalive_timeout 75s; keepalive_requests 1000000;
  upstream node { server 127.0.0.1:$UP; keepalive 64; keepalive_requests 1000000; keepalive_timeout 60s; }
  server {
    listen 127.0.0.1:$NGX ssl http2;
    ssl_certificate $RUN/ec.crt; ssl_certificate_key $RUN/ec.key; ssl_protocols TLSv1.2 TLSv1.3;
    # the same answer visor gives by default: HSTS + helmet's 11 headers, X-Powered-By hidden
    add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
    add_header Content-Security-Policy "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests" always;
    add_header Cross-Origin-Opener-Policy same-origin always;
    add_header Cross-Origin-Resource-Policy same-origin always;
    add_header Origin-Agent-Cluster "?1" always;
    add_header Referrer-Policy no-referrer always;
    add_header X-Content-Type-Options nosniff always;
    add_header X-DNS-Prefetch-Control off always;
    add_header X-Download-Options noopen always;
    add_header X-Frame-Options SAMEORIGIN always;
    add_header X-Permitted-Cross-Domain-Policies none always;
    add_header X-XSS-Protection 0 always;
    location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr; proxy_set_header X-Forwarded-Proto https;
      proxy_hide_header X-Powered-By; proxy_pass http://node; }
  }
}
NGX
cat > "$RUN/visor.yaml" <<VIS
listen: { https: 127.0.0.1:$VIS, http: 127.0.0.1:$VISH }
workers: 2
tls: { certificates: [ { cert: $RUN/ec.crt, key: $RUN/ec.key } ] }
upstream: { servers: [127.0.0.1:$UP], keepalive: 64 }
log: { level: warn, access: off }
VIS
"$VISOR_BIN" -t -c "$RUN/visor.yaml"

# ---- start ----------------------------------------------------------------------------
ulimit -n 20000 2>/dev/null || true
node "$HERE/upstream.js" "$UP" > "$RUN/upstream.log" 2>&1 & PIDS[upstream]=$!
nginx -c "$RUN/nginx.conf" -g 'daemon off;' > "$RUN/nginx.out" 2>&1 & PIDS[nginx]=$!
"$VISOR_BIN" -c "$RUN/visor.yaml" > "$RUN/visor.out" 2> "$RUN/visor.err" & PIDS[visor]=$!
wait_port $UP; wait_port $NGX; wait_port $VIS
declare -A PORT=([nginx]=$NGX [visor]=$VIS)
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p')"
  nginx -v 2>&1; "$VISOR_BIN" -V | head -2 | tr '\n' ' '; echo; node --version; } | tee "$RUN/versions.txt"

wrk_run() { timeout 120 wrk -t1 -c"$CONNS" -d"$1" --latency "https://127.0.0.1:$2/api/items"; }
echo "[warm-up 3s each]"; for p in nginx visor; do wrk_run 3s "${PORT[$p]}" > /dev/null; done

# ---- memory: idle keep-alive TLS connections ------------------------------------------------
echo "[memory: $IDLE_N idle keep-alive TLS connections]"
declare -A MEM=()
for p in nginx visor; do
  pids=$(pids_of $p); before=$(rss_kb $pids)
  node "$HERE/idle-conns.js" "${PORT[$p]}" "$IDLE_N" 6 > "$RUN/idle-$p.txt" 2>&1 & cpid=$!
  for _ in $(seq 1 600); do grep -q HOLDING "$RUN/idle-$p.txt" && break; kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
  sleep 2; held=$(rss_kb $pids); wait $cpid || true
  read -r _ okc failc < <(grep HOLDING "$RUN/idle-$p.txt" || echo "x 0 $IDLE_N")
  per=$(awk -v a="$before" -v b="$held" -v n="$okc" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "nan" }')
  MEM[$p]=$per
  echo "  $p: before ${before} kB, holding ${held} kB, ${per} KiB/conn ($okc ok, $failc failed)"
  sleep 2
done

# ---- throughput -------------------------------------------------------------------------------
echo "[throughput: wrk -t1 -c$CONNS -d$DUR, $ROUNDS interleaved rounds]"
: > "$RUN/rounds.tsv"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="nginx visor"; else order="visor nginx"; fi
  for p in $order; do
    pids=$(pids_of $p); t0=$(ticks $pids)
    out=$(wrk_run "$DUR" "${PORT[$p]}")
    t1=$(ticks $pids)
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
    cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$p" "$rps" "$p50" "$p99" "$cpu" "$errs" >> "$RUN/rounds.tsv"
    echo "  round $r $p: $rps req/s, p50 $p50, p99 $p99, ${cpu} µs CPU/req ${errs}"
  done
done

# ---- HTTP/2 -------------------------------------------------------------------------------
echo "[memory: $IDLE_N idle HTTP/2 connections]"
declare -A MEM2=()
for p in nginx visor; do
  pids=$(pids_of $p); before=$(rss_kb $pids)
  node "$HERE/idle-h2.js" "${PORT[$p]}" "$IDLE_N" 6 > "$RUN/idle2-$p.txt" 2>&1 & cpid=$!
  for _ in $(seq 1 600); do grep -q HOLDING "$RUN/idle2-$p.txt" && break; kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
  sleep 2; held=$(rss_kb $pids); wait $cpid || true
  read -r _ okc failc < <(grep HOLDING "$RUN/idle2-$p.txt" || echo "x 0 $IDLE_N")
  MEM2[$p]=$(awk -v a="$before" -v b="$held" -v n="$okc" 'BEGIN { if (n > 0) printf "%.1f", (b - a) / n; else print "nan" }')
  echo "  $p: before ${before} kB, holding ${held} kB, ${MEM2[$p]} KiB/conn ($okc ok, $failc failed)"
  sleep 2
done
echo "[throughput: h2load -c50 -m10 -D$H2_DUR, $ROUNDS interleaved rounds]"
: > "$RUN/rounds-h2.tsv"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="nginx visor"; else order="visor nginx"; fi
  for p in $order; do
    pids=$(pids_of $p); t0=$(ticks $pids)
    out=$(timeout 120 h2load -c50 -m10 -t1 -D"$H2_DUR" "https://127.0.0.1:${PORT[$p]}/api/items" 2>&1 || true)
    t1=$(ticks $pids)
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    reqs=$(awk '/^requests:/ {print $8}' <<<"$out")
    codes=$(awk '/^status codes:/ {print $3, $4}' <<<"$out")
    cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "nan" }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$p" "$rps" "$cpu" "$reqs" >> "$RUN/rounds-h2.tsv"
    echo "  round $r $p: $rps req/s, ${cpu} µs CPU/req, $reqs succeeded, 2xx $codes"
  done
done

echo
echo "| peer | req/s per round | median req/s | p50 (median) | p99 (median) | CPU µs/req (median) | idle KiB/conn |"
echo "|---|---|---:|---:|---:|---:|---:|"
for p in nginx visor; do
  per=$(awk -v p=$p '$2==p {printf "%s%.0f", s, $3; s=" / "}' "$RUN/rounds.tsv")
  m=$(awk -v p=$p '$2==p {print $3}' "$RUN/rounds.tsv" | median)
  p50=$(awk -v p=$p '$2==p {v=$4; sub(/ms/,"",v); if ($4 ~ /us$/) {sub(/us/,"",v); v=v/1000} print v}' "$RUN/rounds.tsv" | median)
  p99=$(awk -v p=$p '$2==p {v=$5; sub(/ms/,"",v); if ($5 ~ /us$/) {sub(/us/,"",v); v=v/1000} print v}' "$RUN/rounds.tsv" | median)
  cpu=$(awk -v p=$p '$2==p {print $6}' "$RUN/rounds.tsv" | median)
  echo "| $p | $per | $m | ${p50} ms | ${p99} ms | $cpu | ${MEM[$p]} |"
done
# per-round ratios (portable awk: no arrays of arrays)
ratio_of() { awk -v c="$1" '{v[$1 "," $2] = $c; r[$1] = 1} END {for (k in r) if (v[k ",nginx"] > 0) print v[k ",visor"] / v[k ",nginx"]}' "$RUN/rounds.tsv" | median; }
ratio=$(ratio_of 3)
cpur=$(ratio_of 6)
echo
echo "visor/nginx throughput ratio (median of per-round ratios): $ratio"
echo "visor/nginx CPU-per-request ratio (median): $cpur"
echo "visor/nginx idle memory per connection: ${MEM[visor]} / ${MEM[nginx]} KiB"
echo
echo "| peer (HTTP/2, h2load -c50 -m10) | req/s per round | median req/s | CPU µs/req (median) | idle KiB/conn h2 | idle KiB/conn h1 |"
echo "|---|---|---:|---:|---:|---:|"
for p in nginx visor; do
  per=$(awk -v p=$p '$2==p {printf "%s%.0f", s, $3; s=" / "}' "$RUN/rounds-h2.tsv")
  m=$(awk -v p=$p '$2==p {print $3}' "$RUN/rounds-h2.tsv" | median)
  cpu=$(awk -v p=$p '$2==p {print $4}' "$RUN/rounds-h2.tsv" | median)
  echo "| $p | $per | $m | $cpu | ${MEM2[$p]} | ${MEM[$p]} |"
done
ratio2() { awk -v c="$1" '{v[$1 "," $2] = $c; r[$1] = 1} END {for (k in r) if (v[k ",nginx"] > 0) print v[k ",visor"] / v[k ",nginx"]}' "$RUN/rounds-h2.tsv" | median; }
echo
echo "visor/nginx HTTP/2 throughput ratio (median of per-round ratios): $(ratio2 3)"
echo "visor/nginx HTTP/2 CPU-per-request ratio (median): $(ratio2 4)"
echo "visor/nginx idle memory per HTTP/2 connection: ${MEM2[visor]} / ${MEM2[nginx]} KiB"
