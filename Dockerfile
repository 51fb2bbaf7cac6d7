FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY adapter ./adapter
COPY mock_portal ./mock_portal
COPY mappings ./mappings
RUN pip install ".[postgres]" && useradd --system --create-home --home-dir /var/lib/dvcsync dvcsync \
    && mkdir -p /etc/dvcsync && chown dvcsync /var/lib/dvcsync
USER dvcsync
WORKDIR /var/lib/dvcsync
ENV DVCSYNC_PROVINCE__MAPPINGS=/app/mappings
EXPOSE 8090
ENTRYPOINT ["dvcsync"]
CMD ["--help"]
