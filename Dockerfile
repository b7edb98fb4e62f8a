# syntax=docker/dockerfile:1
# The ODR platform in one image: `docker build -t odr . && docker run -p 8000:8000 -v odr-data:/data odr`
# Data (SQLite database, generated secret key, files) lives in the /data volume.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DEBIAN_FRONTEND=noninteractive

# Node and npm build the browser bundle; DejaVu fonts cover Kazakh letters in rendered PDFs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. The package is installed
# editable because it finds frontend/templates and frontend/static next to odr/.
COPY frontend/package.json frontend/package-lock.json frontend/
RUN cd frontend && npm ci --no-audit --no-fund --loglevel=error

COPY pyproject.toml README.md ./
COPY odr/__init__.py odr/
COPY rooms/__init__.py rooms/
COPY documents/__init__.py documents/
RUN pip install -e . && rm -rf odr rooms documents

COPY . .
# Same bundle command as `make frontend`; node_modules is not needed at run time.
RUN frontend/node_modules/.bin/esbuild frontend/src/app.js --bundle --minify --format=iife \
        --outfile=frontend/static/app.js \
    && rm -rf frontend/node_modules \
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
