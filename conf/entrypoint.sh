#!/bin/bash
# visor's container entrypoint, installed as /usr/local/bin/visor-entrypoint. It checks what
# the baked configuration needs, then `exec`s visor, so visor is PID 1 and handles SIGTERM
# (drain, exit 0) and SIGHUP (reload) itself. Its own messages are JSON lines on stderr, like
# visor's. The same file, called as /usr/local/bin/visor-healthcheck, is the HEALTHCHECK.
#
#   (no arguments)         run /etc/visor/visor.yaml (see "Which file" below)
#   -t [--strict] | -V     visor's check / version, with the same file selection
#   -c FILE ...            visor's own arguments, passed as they are; no checks
#   any other command      run it instead (debugging: docker run --rm -it visor bash)
#
# Which file: VISOR_CONFIG, else /etc/visor/visor.yaml. If that is the file baked into the
# image (unchanged) and REDIS_URL is unset, /etc/visor/visor-local.yaml (the same without its
# redis section: rate limits in memory, per instance) is run instead. A file you mount is
# always run as it is. Messages name the file as you know it: visor-local.yaml is reported as
# /etc/visor/visor.yaml (--config-name; its lines are the same, the redis block commented out).
#
# Environment:
#   REDIS_URL_FILE     read REDIS_URL from this file (a Docker/Kubernetes secret)
#   VISOR_DEV_CERT=1   no certificate mounted: make a throw-away self-signed one for localhost
#                      (trying visor out only: clients must skip verification)
# The baked file's variables are listed in docs/deployment.md.
set -u

BAKED=/usr/share/visor/visor.yaml        # pristine copy of /etc/visor/visor.yaml
DEFAULT=/etc/visor/visor.yaml
LOCAL=/etc/visor/visor-local.yaml

# ---- healthcheck: GET /healthz on the admin listener, with bash's /dev/tcp (no fork, no
# curl), so visor as PID 1 never inherits a zombie from it.
if [ "${0##*/}" = visor-healthcheck ]; then
	addr=${VISOR_HEALTHCHECK_ADDR:-${VISOR_ADMIN:-0.0.0.0:9090}}
	port=${addr##*:}
	host=${addr%:*}
	case $host in 0.0.0.0 | '[::]' | '' | '*') host=127.0.0.1 ;; esac
	host=${host#[}
	host=${host%]}
	exec 3<>"/dev/tcp/$host/$port" || exit 1
	printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
	IFS= read -r -t 3 status <&3 || exit 1
	[[ $status == 'HTTP/1.1 200 '* ]] && exit 0
	echo "visor-healthcheck: $status" >&2
	exit 1
fi

json_escape() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\t'/\\t}
	printf '%s' "$s"
}
log() {         # log LEVEL MESSAGE: one JSON line on stderr, visor's format
	printf '{"time":"%s","level":"%s","msg":"entrypoint: %s"}\n' \
	    "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$1" "$(json_escape "$2")" >&2
}
die() {
	log error "$1"
	exit 1
}

# A command that is not an option of visor's: run it (exec: it becomes PID 1).
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
	exec "$@"
fi

mode=run
for a in "$@"; do
	case $a in
	-c) exec /usr/local/bin/visor "$@" ;;      # an explicit file: visor decides alone
	-t) mode=check ;;
	-V | --version | -h | --help | --config-reference) exec /usr/local/bin/visor "$@" ;;
	esac
done

if [ -n "${REDIS_URL_FILE:-}" ]; then
	[ -r "$REDIS_URL_FILE" ] || die "REDIS_URL_FILE=$REDIS_URL_FILE is not a readable file (uid $(id -u))"
	REDIS_URL=$(cat "$REDIS_URL_FILE") || exit 1
	export REDIS_URL
fi

config=${VISOR_CONFIG:-$DEFAULT}
baked=0
if [ "$config" = "$DEFAULT" ] && cmp -s "$DEFAULT" "$BAKED"; then
	baked=1
	if [ -z "${REDIS_URL:-}" ]; then
		config=$LOCAL
		[ $mode = run ] && log info "REDIS_URL is not set: rate limits, lockout and bans are kept in memory, per instance ($LOCAL)"
	fi
fi

# A readable regular file, or a message that says what to mount.
need_file() {   # need_file PATH WHAT HOW
	if [ ! -e "$1" ]; then
		die "no $2 at $1: $3"
	elif [ ! -r "$1" ]; then
		die "$2 $1 is not readable by uid $(id -u): make it readable by that user (e.g. chown $(id -u) on the host, or fsGroup/defaultMode on Kubernetes)"
	fi
}

# workers: auto counts the machine's CPUs; under a CPU limit (docker --cpus, Kubernetes
# limits.cpu) that many threads only queue behind the quota. Use the quota, rounded up.
cpu_quota() {
	local q p
	if [ -r /sys/fs/cgroup/cpu.max ]; then
		read -r q p </sys/fs/cgroup/cpu.max || return 1
	elif [ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us ] && [ -r /sys/fs/cgroup/cpu/cpu.cfs_period_us ]; then
		q=$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) p=$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)
	else
		return 1
	fi
	case $q in max | -1 | '' | *[!0-9]*) return 1 ;; esac
	case $p in '' | 0 | *[!0-9]*) return 1 ;; esac
	echo $(((q + p - 1) / p))
}
if [ $baked = 1 ] && [ -z "${VISOR_WORKERS:-}" ] && n=$(cpu_quota) && [ "$n" -lt "$(nproc --all)" ]; then
	export VISOR_WORKERS=$n
	[ $mode = run ] && log info "CPU limit of $n CPU(s): $n workers (set VISOR_WORKERS to choose)"
fi

if [ $mode = run ] && [ $baked = 1 ]; then
	cert=${VISOR_TLS_CERT:-/run/secrets/tls.crt}
	key=${VISOR_TLS_KEY:-/run/secrets/tls.key}
	if [ ! -e "$cert" ] && [ ! -e "$key" ] && [ "${VISOR_DEV_CERT:-0}" = 1 ]; then
		dir=${VISOR_DEV_CERT_DIR:-/tmp/visor-dev-cert}
		mkdir -p "$dir" && chmod 700 "$dir" || die "VISOR_DEV_CERT=1: cannot create $dir (read-only file system? set VISOR_DEV_CERT_DIR to a writable directory)"
		if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 30 \
		    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
		    -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth \
		    -keyout "$dir/tls.key" -out "$dir/tls.crt" 2>/dev/null; then
			die "VISOR_DEV_CERT=1: openssl could not create a certificate in $dir"
		fi
		export VISOR_TLS_CERT=$dir/tls.crt VISOR_TLS_KEY=$dir/tls.key
		cert=$VISOR_TLS_CERT
		key=$VISOR_TLS_KEY
		log warn "VISOR_DEV_CERT=1: serving a self-signed certificate for localhost made just now ($cert, 30 days); for trying visor out only, never in production"
	fi
	how="mount your certificate chain and key (PEM) at /run/secrets/tls.crt and /run/secrets/tls.key, or set VISOR_TLS_CERT and VISOR_TLS_KEY to their paths; to try visor out without one, set VISOR_DEV_CERT=1 (self-signed)"
	need_file "$cert" "TLS certificate" "$how"
	need_file "$key" "TLS private key" "$how"
	jwtkey=${VISOR_JWT_KEY:-/run/secrets/jwt.pub.pem}
	need_file "$jwtkey" "JWT public key" "mount the PEM public key your tokens are signed with at /run/secrets/jwt.pub.pem, or set VISOR_JWT_KEY to its path (routes under /api/ require a token)"
	[ -n "${JWT_ISSUER:-}" ] || die "JWT_ISSUER is not set: set it to the iss your identity provider puts in its tokens (e.g. https://auth.example.com)"
	[ -n "${JWT_AUDIENCE:-}" ] || die "JWT_AUDIENCE is not set: set it to the aud your tokens carry for this API (e.g. api.example.com)"
fi

# visor-local.yaml is visor.yaml with its redis lines commented out: name the file you know
if [ "$config" = "$LOCAL" ]; then
	exec /usr/local/bin/visor -c "$config" --config-name "$DEFAULT" "$@"
fi
exec /usr/local/bin/visor -c "$config" "$@"
