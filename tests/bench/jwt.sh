#!/usr/bin/env bash
# JWT cost at the edge (issue 5): the same visor, the same fast Node upstream, the same
# requests (each carries `Authorization: Bearer <token>`), to a route with `auth: required`
# and to one with `auth: off` — so the only difference is the jwt filter's work.
#   pub      /pub/items  auth: off (the token is not looked at; claim headers still stripped)
#   rs256    /api/items  50 RS256 tokens (one per connection's worth, sent round robin): cached
#   es256    /api/items  50 ES256 tokens: cached
#   rs256-nc /api/items  12000 distinct RS256 tokens round robin: more than the per-worker
#   es256-nc /api/items  cache holds, so every request verifies a signature (informational)
# wrk -t1 -cCONNS -dDUR over TLS, keep-alive, ROUNDS interleaved rounds (the order rotates);
# req/s, p50/p99, visor CPU µs per request (utime+stime from /proc), and each run's ratio to
# `pub` in the same round; medians printed. Target: cached runs >= 0.95x pub.
# Keys and tokens are generated here (openssl, node:crypto). Loopback only; every load step
# is time-bounded; stops what it started (by PID).
# Knobs: ROUNDS=3 DUR=10s CONNS=50 WORKERS=2 PORT_BASE=19500 VISOR_BIN=./visor
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd); TOP=$(cd "$HERE/../.." && pwd)
RUN=$HERE/run/jwt; mkdir -p "$RUN"
ROUNDS=${ROUNDS:-3}; DUR=${DUR:-10s}; CONNS=${CONNS:-50}; WORKERS=${WORKERS:-2}
PB=${PORT_BASE:-19500}; UP=$PB; VIS=$((PB + 1))
VISOR_BIN=${VISOR_BIN:-$TOP/visor}
. "$HERE/lib.sh"

for t in wrk node openssl curl; do command -v $t >/dev/null || { echo "jwt.sh: $t is required" >&2; exit 2; }; done

# ---- certificate, keys, tokens ------------------------------------------------------------
[ -f "$RUN/ec.crt" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$RUN/ec.key" -out "$RUN/ec.crt" -days 30 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$RUN/jwt-rsa.key" 2>/dev/null
openssl pkey -in "$RUN/jwt-rsa.key" -pubout -out "$RUN/jwt-rsa.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$RUN/jwt-ec.key" 2>/dev/null
openssl pkey -in "$RUN/jwt-ec.key" -pubout -out "$RUN/jwt-ec.pub"
echo "[tokens: 50 RS256, 50 ES256, 12000 RS256 and 12000 ES256 distinct]"
RUN="$RUN" timeout 300 node -e '
const c = require("node:crypto"), fs = require("node:fs"), d = process.env.RUN;
const rsa = fs.readFileSync(d + "/jwt-rsa.key"), ec = fs.readFileSync(d + "/jwt-ec.key");
const b = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const t = Math.floor(Date.now() / 1000);
function tok(alg, key, i) {
  const input = b({ alg, typ: "JWT" }) + "." + b({ sub: "user-" + i, iss: "https://auth.bench", aud: "api.bench", iat: t, exp: t + 86400, jti: "j" + i });
  const s = alg === "RS256" ? c.sign("sha256", Buffer.from(input), key)
    : c.sign("sha256", Buffer.from(input), { key, dsaEncoding: "ieee-p1363" });
  return input + "." + s.toString("base64url");
}
const list = (alg, key, n) => Array.from({ length: n }, (_, i) => tok(alg, key, i)).join("\n") + "\n";
fs.writeFileSync(d + "/rs256.txt", list("RS256", rsa, 50));
fs.writeFileSync(d + "/es256.txt", list("ES256", ec, 50));
fs.writeFileSync(d + "/rs256-nc.txt", list("RS256", rsa, 12000));
fs.writeFileSync(d + "/es256-nc.txt", list("ES256", ec, 12000));
'
rm -f "$RUN/jwt-rsa.key" "$RUN/jwt-ec.key"

cat > "$RUN/tokens.lua" <<'LUA'
-- wrk: GET <path> with "Authorization: Bearer <token>", tokens from a file, round robin.
local toks, i, path = {}, 0, "/"
function init(args)
  path = args[2]
  for l in io.lines(args[1]) do if #l > 0 then toks[#toks + 1] = l end end
end
function request()
  i = i % #toks + 1
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. toks[i] })
end
LUA

cat > "$RUN/visor.yaml" <<VIS
listen: { https: 127.0.0.1:$VIS }
workers: $WORKERS
tls: { certificates: [ { cert: $RUN/ec.crt, key: $RUN/ec.key } ] }
upstream: { servers: [127.0.0.1:$UP], keepalive: 64 }
log: { level: warn, access: off }
jwt:
  algorithms: [RS256, ES256]
  keys:
    - file: $RUN/jwt-rsa.pub
    - file: $RUN/jwt-ec.pub
  issuer: https://auth.bench
  audience: api.bench
  claims_to_headers: { sub: X-User-Id }
routes:
  - { path: /api/, auth: required }
  - { path: /pub/, auth: off }
VIS
"$VISOR_BIN" -t -c "$RUN/visor.yaml"

# ---- start ------------------------------------------------------------------------------------
ulimit -n 20000 2>/dev/null || true
node "$HERE/upstream.js" "$UP" > "$RUN/upstream.log" 2>&1 & PIDS[upstream]=$!
"$VISOR_BIN" -c "$RUN/visor.yaml" > "$RUN/visor.out" 2> "$RUN/visor.err" & PIDS[visor]=$!
wait_port $UP; wait_port $VIS
{ echo "date: $(date -u +%FT%TZ)"; echo "cpu: $(nproc) x $(lscpu | sed -n 's/^Model name: *//p')"
  "$VISOR_BIN" -V | head -2 | tr '\n' ' '; echo; node --version; } | tee "$RUN/versions.txt"

# sanity: the token passes on /api/, a missing one does not
tk=$(head -n1 "$RUN/rs256.txt")
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $tk" "https://127.0.0.1:$VIS/api/items")
[ "$code" = 200 ] || { echo "protected route with a valid token answered $code" >&2; exit 1; }
code=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$VIS/api/items")
[ "$code" = 401 ] || { echo "protected route without a token answered $code" >&2; exit 1; }

declare -A PATHOF=([pub]=/pub/items [rs256]=/api/items [es256]=/api/items [rs256-nc]=/api/items [es256-nc]=/api/items)
declare -A TOKOF=([pub]=rs256 [rs256]=rs256 [es256]=es256 [rs256-nc]=rs256-nc [es256-nc]=es256-nc)
RUNS=(pub rs256 es256 rs256-nc es256-nc)
wrk_run() { timeout 120 wrk -t1 -c"$CONNS" -d"$1" --latency -s "$RUN/tokens.lua" \
  "https://127.0.0.1:$VIS${PATHOF[$2]}" -- "$RUN/${TOKOF[$2]}.txt" "${PATHOF[$2]}"; }
echo "[warm-up 3s each]"; for k in "${RUNS[@]}"; do wrk_run 3s "$k" > /dev/null; done

echo "[throughput: wrk -t1 -c$CONNS -d$DUR, $ROUNDS interleaved rounds, visor workers: $WORKERS]"
: > "$RUN/rounds.tsv"
for r in $(seq 1 "$ROUNDS"); do
  n=${#RUNS[@]}; order=()
  for i in $(seq 0 $((n - 1))); do order+=("${RUNS[$(((i + r - 1) % n))]}"); done
  for k in "${order[@]}"; do
    t0=$(ticks "${PIDS[visor]}")
    out=$(wrk_run "$DUR" "$k")
    t1=$(ticks "${PIDS[visor]}")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out"); p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errs=$(grep -E "Non-2xx|Socket errors" <<<"$out" | tr '\n' ' ' || true)
    cpu=$(awk -v d=$((t1 - t0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", d / hz * 1e6 / n }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$k" "$rps" "$p50" "$p99" "$cpu" "$errs" >> "$RUN/rounds.tsv"
    echo "  round $r $k: $rps req/s, p50 $p50, p99 $p99, ${cpu} µs visor CPU/req ${errs}"
  done
done

ms() { awk -v k="$1" -v c="$2" '$2==k {v=$c; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) sub(/ms/,"",v); else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000} print v}' "$RUN/rounds.tsv" | median; }
ratio() { awk -v k="$1" -v c="$2" '{v[$1 "," $2] = $c; r[$1] = 1} END {for (x in r) if (v[x ",pub"] > 0) print v[x "," k] / v[x ",pub"]}' "$RUN/rounds.tsv" | median; }
echo
echo "| run | req/s per round | median req/s | ratio to pub | p50 | p99 | visor CPU µs/req | CPU ratio |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for k in "${RUNS[@]}"; do
  per=$(awk -v k="$k" '$2==k {printf "%s%.0f", s, $3; s=" / "}' "$RUN/rounds.tsv")
  m=$(awk -v k="$k" '$2==k {print $3}' "$RUN/rounds.tsv" | median)
  cpu=$(awk -v k="$k" '$2==k {print $6}' "$RUN/rounds.tsv" | median)
  printf '| %s | %s | %s | %.3f | %s ms | %s ms | %s | %.3f |\n' "$k" "$per" "$m" "$(ratio "$k" 3)" \
    "$(ms "$k" 4)" "$(ms "$k" 5)" "$cpu" "$(ratio "$k" 6)"
done
echo
echo "protected/unprotected throughput (cached, median of per-round ratios): RS256 $(ratio rs256 3), ES256 $(ratio es256 3)"
echo "protected/unprotected visor CPU per request (cached, median): RS256 $(ratio rs256 6), ES256 $(ratio es256 6)"

# ---- the filter alone: CPU per request, in-process (robust on a busy machine) ----------------
# Links the filter (src/filters/jwt.c, included to reach verify/accept_token) against the build's
# libvisor.a; skipped when it is not built (make visor builds it).
LIB=$TOP/${B:-build}
if [ "${MICRO:-1}" = 1 ] && [ -f "$LIB/libvisor.a" ] && [ -f "$LIB/libllhttp.a" ]; then
  cat > "$RUN/micro.c" <<'C'
#include <time.h>
#include "filters/jwt.c"
#include "core/worker.h"
static double ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
static char **load(const char *f, size_t *n) {
	FILE *fp = fopen(f, "r"); char line[4096], **v = NULL; *n = 0;
	while (fp && fgets(line, sizeof(line), fp)) { line[strcspn(line, "\n")] = 0; if (!*line) continue;
		v = realloc(v, (*n + 1) * sizeof(*v)); v[(*n)++] = strdup(line); }
	if (fp) fclose(fp); return v;
}
int main(int argc, char **argv) {
	struct worker w; struct jwt_wstate *ws; void *p = NULL; struct jwt_conf jc; struct req r;
	static const char *const aud[] = { "api.bench" };
	const char *err; struct jwt_key k; struct jwt_ident *id; int kid;
	memset(&w, 0, sizeof(w)); w.base = event_base_new(); jwt_worker_init(&w, &p); ws = p;
	memset(&jc, 0, sizeof(jc)); jc.id = 1; jc.algs = JWT_ALG_BIT(JWT_RS256) | JWT_ALG_BIT(JWT_ES256);
	jc.keys = jwt_keyset_new(); jc.policy.issuer = "https://auth.bench"; jc.policy.audience = aud;
	jc.policy.n_audience = 1; jc.policy.leeway_s = 30;
	static struct jwt_claimhdr ch = { "sub", "X-User-Id", 9 }; jc.ch = &ch; jc.nch = 1;
	for (int i = 1; i <= 2; i++) { size_t l; char *pem = file_read_all(argv[i], 1 << 20, &l);
		if (!pem || jwt_key_from_pem(pem, l, NULL, &k, &err) < 0) { fprintf(stderr, "key %s\n", argv[i]); return 1; }
		jwt_keyset_add(jc.keys, &k); free(pem); }
	for (int f = 3; f <= 4; f++) {
		size_t n; char **t = load(argv[f], &n); int64_t now = wall_s(); double t0; long it;
		/* uncached: a fresh conf id per call means every verify is a miss */
		memset(&r, 0, sizeof(r)); arena_init(&r.a, 4096); memcpy(r.id, "0", 2); r.w = &w;
		t0 = ns(); for (it = 0; it < 2000; it++) { jc.id = 100 + it;
			if (verify(ws, &jc, &r, t[it % n], strlen(t[it % n]), now, &id, &kid) != JWT_OK) return 2; }
		double miss = (ns() - t0) / 2000;
		jc.id = 1;
		for (size_t i = 0; i < n; i++) verify(ws, &jc, &r, t[i], strlen(t[i]), now, &id, &kid);
		t0 = ns(); for (it = 0; it < 200000; it++) {
			if (verify(ws, &jc, &r, t[it % n], strlen(t[it % n]), now, &id, &kid) != JWT_OK) return 3;
			r.h.hdrs.n = 0; if (accept_token(&r, &jc, id) < 0) return 4;
			if ((it & 1023) == 0) { arena_free(&r.a); arena_init(&r.a, 4096); memset(&r.h.hdrs, 0, sizeof(r.h.hdrs)); } }
		double hit = (ns() - t0) / 200000;
		printf("  %s: cache hit (hash + lookup + time checks + identity and header copies) %.2f µs/request; "
		    "uncached verification %.1f µs/request\n", strstr(argv[f], "rs256") ? "RS256" : "ES256", hit / 1000, miss / 1000);
		arena_free(&r.a);
	}
	return 0;
}
C
  if ${CC:-cc} -std=c11 -D_GNU_SOURCE -pthread -O2 -w -I"$TOP/src" -I/usr/share/include/llhttp \
      $(pkg-config --cflags libevent openssl jansson hiredis yaml-0.1) -o "$RUN/micro" "$RUN/micro.c" \
      "$LIB/libvisor.a" "$LIB/libllhttp.a" $(pkg-config --libs libevent libevent_pthreads openssl jansson hiredis yaml-0.1) -lm 2> "$RUN/micro.err"; then
    echo "[the filter alone, in-process, one core]"
    timeout 120 "$RUN/micro" "$RUN/jwt-rsa.pub" "$RUN/jwt-ec.pub" "$RUN/rs256.txt" "$RUN/es256.txt" || echo "  micro benchmark failed"
  else
    echo "[micro benchmark not built: see $RUN/micro.err]"
  fi
fi
