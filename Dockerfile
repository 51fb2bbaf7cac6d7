# dvcsync: the adapter (and the mock portal, `dvcsync mock-portal`) in one image.
#   docker build -t dvcsync .
#   docker run --rm dvcsync --help
#   docker run -d -p 8090:8090 -v dvcsync-state:/var/lib/dvcsync \
#     -v "$PWD/etc:/etc/dvcsync:ro" -v "$PWD/secrets:/run/secrets:ro" dvcsync
# Mount the configuration at /etc/dvcsync/dvcsync.toml (write one with `dvcsync init`; see
# deploy/dvcsync.toml.example). In a container the inbound server must listen on 0.0.0.0, and
# `dvcsync run` refuses a non-loopback address unless [server] allow, token_file or tls_client_ca
# is set (SECURITY.md). Keep the state on the volume: [state] url = "sqlite:////var/lib/dvcsync/state.db"
# or a PostgreSQL URL. Create or migrate the state once per release: `docker run ... dvcsync db upgrade`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src

# 1. Dependencies only, from the lock file (exact versions, sha256 hashes: the build resolves
#    nothing; `make lock` refreshes it): this layer is rebuilt when they change, not on every code
#    change. [postgres] and [mysql] are included: the state store or the one-stop system may be
#    PostgreSQL, the one-stop system MariaDB/MySQL.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock \
    && rm requirements.lock

# 2. The code, mapping specs and code tables (they ship inside the package), installed without
#    touching the dependencies; the sources are not kept.
COPY pyproject.toml README.md LICENSE ./
COPY dvcsync ./dvcsync
COPY mock_portal ./mock_portal
COPY mappings ./mappings
RUN pip install --no-deps . \
    && cd / && rm -rf /src \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/dvcsync --shell /usr/sbin/nologin dvcsync \
    && mkdir -p /var/lib/dvcsync /etc/dvcsync \
    && chown dvcsync:dvcsync /var/lib/dvcsync

USER dvcsync
WORKDIR /var/lib/dvcsync
VOLUME /var/lib/dvcsync
ENV DVCSYNC_CONFIG=/etc/dvcsync/dvcsync.toml
EXPOSE 8090
# /healthz answers without credentials (SECURITY.md); no curl in a slim image. With [server]
# tls_cert or another port, override the health check (compose: healthcheck:).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8090/healthz', timeout=4)"]
ENTRYPOINT ["dvcsync"]
CMD ["run"]
