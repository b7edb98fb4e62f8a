# syntax=docker/dockerfile:1
# The ODR platform in one image: `docker build -t odr . && docker run -p 8000:8000 -v odr-data:/data odr`
# Data (SQLite database, generated secret key, files) lives in the /data volume; with
# ODR_DATABASE_URL (PostgreSQL) and ODR_REDIS_URL set, replicas share them (see compose.yaml).

# --- Stage 1: Node builds the browser bundles, with the same script as `make frontend` --------
FROM node:20-bookworm-slim AS bundles
WORKDIR /build/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/build.mjs ./
COPY frontend/src ./src
RUN npm run build -- --outdir /build/static

# --- Stage 2: a slim Python runtime ------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive

# DejaVu fonts cover Kazakh letters in rendered PDFs; WeasyPrint needs Pango.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core libpango-1.0-0 \
        libpangoft2-1.0-0 libharfbuzz-subset0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. The package is installed
# editable because it finds frontend/templates and frontend/static next to odr/.
COPY pyproject.toml README.md ./
COPY odr/__init__.py odr/
COPY rooms/__init__.py rooms/
COPY documents/__init__.py documents/
RUN pip install -e . && rm -rf odr rooms documents

COPY . .
COPY --from=bundles /build/static/ frontend/static/
RUN rm -rf frontend/src frontend/build.mjs frontend/package*.json \
    && pip install --no-deps -e . \
    && useradd --system --home-dir /data --shell /usr/sbin/nologin odr \
    && mkdir -p /data && chown odr:odr /data

USER odr
ENV ODR_DATA_DIR=/data \
    PORT=8000
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=4)" || exit 1

# Migrates, creates the demo on an empty database (passwords are printed once), and serves.
CMD ["odr", "run", "--host", "0.0.0.0"]
