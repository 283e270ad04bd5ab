# dohost serve in a container: a self-hosted Durable Objects server.
#
#   docker build -t dohost .             # or: podman build --format docker -t dohost .
#   docker run -p 8787:8787 -v dohost-data:/data -e DOHOST_TOKEN=s3cret dohost
#   dohost deploy --to http://localhost:8787 --token s3cret      # from a project folder
#
# The server listens beyond loopback, so it refuses to start without a deploy
# token (DOHOST_TOKEN). Object storage and deployed versions live in /data.
#
# The base is Debian's own image and Debian's Python 3.11 (not python:3.11-slim):
# tests/e2e/test_container.py builds this exact base from Debian's packages with
# debootstrap where no registry is reachable, then builds and runs this file.
# Behind a package mirror or offline, pip reads its usual variables as build
# arguments, e.g. --build-arg PIP_INDEX_URL=https://mirror/simple, or
# --build-arg PIP_NO_INDEX=1 --build-arg PIP_FIND_LINKS=/wheels with the
# wheels mounted at /wheels (podman build -v DIR:/wheels:ro).
# tests/e2e/test_dockerfile.py checks that ENTRYPOINT/CMD and the HEALTHCHECK
# match what the e2e serve tests run and query.
FROM debian:bookworm-slim

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_NO_INDEX

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/dohost/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DOHOST_DATA_DIR=/data \
    DOHOST_LISTEN=0.0.0.0:8787

# A virtualenv keeps pip away from Debian's own python3 packages (PEP 668), and
# puts `python` and `dohost` first on PATH (the HEALTHCHECK runs `python`).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/dohost

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
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8787
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/__dohost/health', timeout=4)"]
ENTRYPOINT ["dohost", "serve"]
