# visor — the image users deploy (docs/getting-started.md, docs/deployment.md).
#
#   docker build -t visor .
#   podman build --format docker -t visor .      (--format docker keeps the HEALTHCHECK)
#
# Two stages on debian:bookworm-slim; every build input comes from Debian's apt mirror.
#   build   the -dev packages and gcc, `make visor`, the binary stripped
#   final   the runtime libraries only, /usr/local/bin/visor, the baked configuration
#           (conf/container.yaml) and the entrypoint (conf/entrypoint.sh); no compiler.
#
# Security rebuilds (docs/security.md): the final stage runs `apt-get upgrade`, so a rebuild
# picks up every Debian security update even when the base image is older. Layers are cached;
# to force the apt layers to run again, pass a new APT_REFRESH, e.g. weekly:
#   docker build --pull --build-arg APT_REFRESH=$(date +%G-W%V) -t visor .

# ---- build ----------------------------------------------------------------------------
FROM debian:bookworm-slim AS build
ARG APT_REFRESH=
RUN set -eux; \
    : "apt refresh: ${APT_REFRESH}"; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        make gcc libc6-dev pkg-config libevent-dev libssl-dev libjansson-dev \
        libhiredis-dev libyaml-dev node-llhttp libnghttp2-dev; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what `make visor` reads (.dockerignore keeps the rest out of the context), so an
# edit to the docs or the tests does not rebuild.
COPY Makefile VERSION ./
COPY src/ src/
RUN set -eux; \
    make -j"$(nproc)" visor; \
    strip --strip-unneeded -o /visor visor; \
    /visor -V

# ---- final ----------------------------------------------------------------------------
FROM debian:bookworm-slim
ARG APT_REFRESH=
# Runtime libraries (what `readelf -d visor` NEEDs), ca-certificates for jwks_url and
# upstream TLS, openssl for VISOR_DEV_CERT=1 (ca-certificates needs it anyway).
RUN set -eux; \
    : "apt refresh: ${APT_REFRESH}"; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get upgrade -y; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libevent-2.1-7 libevent-pthreads-2.1-7 libssl3 libjansson4 libhiredis0.14 \
        libyaml-0-2 libnghttp2-14 ca-certificates openssl; \
    apt-get clean; \
    rm -rf /var/lib/apt/lists/* /var/log/apt/* /var/log/dpkg.log /var/cache/debconf/*-old; \
    groupadd --gid 10001 visor; \
    useradd --no-log-init --uid 10001 --gid visor --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin visor

COPY --from=build /visor /usr/local/bin/visor
COPY conf/entrypoint.sh /usr/local/bin/visor-entrypoint
COPY conf/container.yaml /etc/visor/visor.yaml
# visor-local.yaml: the same file with its redis section commented out, line for line, so a
# message's file:line:col points into visor.yaml too (run when REDIS_URL is unset);
# /usr/share/visor/visor.yaml: the pristine copy the entrypoint compares a mount against.
# Then both files are checked with throw-away keys, so a broken edit fails the build.
RUN set -eu; \
    chmod 0755 /usr/local/bin/visor-entrypoint; \
    ln -s visor-entrypoint /usr/local/bin/visor-healthcheck; \
    sed '/^# >>> redis/,/^# <<< redis/s/^/# /' /etc/visor/visor.yaml > /etc/visor/visor-local.yaml; \
    ! grep -q '^redis:' /etc/visor/visor-local.yaml; \
    [ "$(wc -l < /etc/visor/visor-local.yaml)" = "$(wc -l < /etc/visor/visor.yaml)" ]; \
    mkdir -p /usr/share/visor; \
    cp /etc/visor/visor.yaml /usr/share/visor/visor.yaml; \
    chmod 0644 /etc/visor/*.yaml /usr/share/visor/visor.yaml; \
    ldd /usr/local/bin/visor | { ! grep 'not found'; }; \
    d=$(mktemp -d); \
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj /CN=build-check -keyout "$d/k" -out "$d/c" 2>/dev/null; \
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkey -pubout -out "$d/j"; \
    export VISOR_TLS_CERT="$d/c" VISOR_TLS_KEY="$d/k" VISOR_JWT_KEY="$d/j" \
        JWT_ISSUER=https://issuer.invalid JWT_AUDIENCE=build-check; \
    visor -t --strict -c /etc/visor/visor-local.yaml; \
    REDIS_URL=redis://:build-check-password@redis:6379/0 visor -t --strict -c /etc/visor/visor.yaml; \
    rm -rf "$d"

WORKDIR /etc/visor
USER 10001:10001
# 8443 HTTPS, 8080 plain HTTP (301 to https, /healthz); 9090 admin (/healthz /readyz
# /metrics, plain HTTP): publish it only to the host or the pod network, never publicly.
EXPOSE 8443 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/visor-healthcheck"]
ENTRYPOINT ["/usr/local/bin/visor-entrypoint"]
CMD []

ARG VERSION=dev
LABEL org.opencontainers.image.title="visor" \
      org.opencontainers.image.description="TLS-terminating reverse proxy for Node.js APIs: HSTS, security headers, CORS, JWT, rate limits, body checks" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"
