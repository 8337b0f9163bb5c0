# gridrisk API image: multi-stage, slim, non-root, HEALTHCHECK on /livez.
# Build: docker build -t gridrisk .    Run with compose.yml (PostGIS + migrations on start).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# Dependencies first (cached while only the code changes), pinned by constraints.txt.
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
RUN pip install -c constraints.txt .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GRIDRISK_HOST=0.0.0.0 \
    GRIDRISK_PORT=8000 \
    GRIDRISK_MIGRATIONS_DIR=/app/migrations \
    GRIDRISK_DATA_DIR=/app/data
# pg_dump / pg_restore for `gridrisk backup` and `gridrisk restore` (bookworm's client is PostgreSQL 15);
# a CJK font for the Chinese titles and legends of map images.
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system gridrisk && useradd --system --gid gridrisk --home-dir /app --shell /usr/sbin/nologin gridrisk
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY migrations ./migrations
COPY data ./data
USER gridrisk
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2).status != 200)"]
# Migrate, build the demo city on first start (~1 min; idempotent, hence the long start-period), serve.
CMD ["sh", "-c", "gridrisk db upgrade && gridrisk demo ensure && exec gridrisk serve"]
