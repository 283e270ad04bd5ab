# dohost serve in a container: a self-hosted Durable Objects server.
#
#   docker build -t dohost .
#   docker run -p 8787:8787 -v dohost-data:/data -e DOHOST_TOKEN=s3cret dohost
#   dohost deploy --to http://localhost:8787 --token s3cret      # from a project folder
#
# The server listens beyond loopback, so it refuses to start without a deploy
# token (DOHOST_TOKEN). Object storage and deployed versions live in /data.
# tests/e2e/test_dockerfile.py checks that ENTRYPOINT/CMD and the HEALTHCHECK
# match what the e2e serve tests run and query.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DOHOST_DATA_DIR=/data \
    DOHOST_LISTEN=0.0.0.0:8787

WORKDIR /app
COPY pyproject.toml README.md ./
COPY objects ./objects
COPY persistence ./persistence
COPY runtime ./runtime
COPY wrangler_compat ./wrangler_compat
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin dohost \
    && mkdir -p /data && chown dohost:dohost /data

USER dohost
VOLUME ["/data"]
EXPOSE 8787
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/__dohost/health', timeout=4)"]
ENTRYPOINT ["dohost", "serve"]
