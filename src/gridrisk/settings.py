"""Service configuration, read from the environment with the prefix GRIDRISK_."""

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The private cluster that `make run` starts under ./.gridrisk/ (see scripts/pgcluster.sh).
DEFAULT_DATABASE_URL = "postgresql://gridrisk@127.0.0.1:25432/gridrisk"


class Settings(BaseSettings):
    """Every knob the service reads; defaults just work with the private cluster."""

    model_config = SettingsConfigDict(env_prefix="GRIDRISK_", env_file=None, extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list)
    public_read: bool = True
    log_level: str = "info"
    pool_min_size: int = Field(default=2, ge=0)
    pool_max_size: int = Field(default=10, ge=1)
    # How long a request waits for a pooled connection before answering 503.
    pool_timeout_s: float = Field(default=5.0, gt=0)
    # Per-statement ceiling so one runaway query cannot hold a connection forever.
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    # A statement waiting this long for a row lock gives up (503) instead of queueing behind it.
    lock_timeout_ms: int = Field(default=5_000, ge=0)
    # A session idle inside a transaction this long is ended by the database, releasing its locks.
    idle_in_transaction_timeout_ms: int = Field(default=15_000, ge=0)
    # Heavy reads (whole-layer maps, OGC pages, GeoJSON exports, imports) run at most this many at a
    # time per worker, so the rest of the pool stays free for lookups and writes.
    heavy_slots: int = Field(default=2, ge=1)
    # Heavy requests allowed to wait for a slot; beyond it they get 503 + Retry-After at once.
    heavy_queue: int = Field(default=24, ge=0)
    # The longest a heavy request waits for a slot before 503 + Retry-After.
    heavy_wait_s: float = Field(default=5.0, gt=0)
    # Heavy responses are built before sending, in memory up to this size, then in a temp file,
    # so no slow reader holds a database connection.
    spool_memory_mb: int = Field(default=16, ge=0)
    # Rate limits per API key (or client address without one), in the `limits` notation
    # ("600/minute", "10/second"); an empty string turns one off. Counted per worker process.
    rate_limit_writes: str = "600/minute"
    rate_limit_heavy: str = "120/minute"
    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Vector-tile cache per worker, in MiB; 0 turns it off (tiles are then rendered every time).
    tile_cache_mb: int = Field(default=128, ge=0)
    # /cells/at: the side, in metres, of the tiles whose answers each worker keeps in memory
    # (lookup/tiles.py: 25 m holds three lookups in four for Nanjing in 12 MB, built in about 3 s
    # after each layer load); 0 turns them off (every lookup asks the spatial index).
    lookup_tile_m: float = Field(default=25.0, ge=0, le=10_000)
    # How often each API process ends the orders of expired warnings (0: never; cron may run
    # `gridrisk warnings expire` instead).
    expiry_interval_s: float = Field(default=60.0, ge=0)
    # How long a webhook receiver may take to answer before the delivery is retried later.
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # The web map's basemap: none by default (the page works offline). Either XYZ raster templates
    # with {z}/{x}/{y} (several, separated by spaces, are drawn bottom to top, e.g. Tianditu's vec_w
    # and cva_w) or one MapLibre style URL; its attribution is shown on the map. basemap_coords
    # GCJ-02 (Amap, Tencent raster tiles) has the page warp each basemap tile onto WGS 84, so the
    # overlays, GPS fixes and the API's coordinates stay true. Tianditu's CGCS2000 is WGS84 here.
    basemap_url: str = ""
    basemap_attribution: str = ""
    basemap_coords: Literal["WGS84", "GCJ-02"] = "WGS84"
    basemap_tile_size: int = Field(default=256, ge=64, le=1024)
    basemap_max_zoom: int = Field(default=18, ge=0, le=22)
    # Further origins a basemap style loads tiles, glyphs or sprites from (for the page's CSP).
    basemap_origins: list[str] = Field(default_factory=list)
    # Streaming replicas for plain reads (JSON list of URLs; empty: everything on the primary).
    # A read carrying a write's WAL position waits at most replica_wait_s for a replica to replay
    # it, then goes to the primary; a read without one goes to a replica at most replica_max_lag_s
    # behind. See db/replicas.py and the README's "Scaling out".
    replica_urls: list[str] = Field(default_factory=list)
    replica_max_lag_s: float = Field(default=2.0, gt=0)
    replica_wait_s: float = Field(default=0.25, ge=0, le=10)
    replica_pool_max_size: int = Field(default=10, ge=1)
    # Where the shipped reference data and the migrations are (the image sets both); none = the checkout's.
    data_dir: Path | None = None
    migrations_dir: Path | None = None

    @model_validator(mode="after")
    def _basemap(self) -> "Settings":
        for url in [*self.basemap_templates, *self.basemap_origins]:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"GRIDRISK_BASEMAP_URL/ORIGINS: {url!r} is not an http(s) URL")
        urls = self.basemap_templates
        if self.basemap_style and len(urls) > 1:
            raise ValueError(
                "GRIDRISK_BASEMAP_URL: give either XYZ templates with {z}/{x}/{y} or one style URL"
            )
        if self.basemap_coords == "GCJ-02" and self.basemap_style:
            raise ValueError(
                "GRIDRISK_BASEMAP_COORDS=GCJ-02 needs XYZ raster tiles ({z}/{x}/{y}): a style's "
                "vector tiles cannot be shifted in the page"
            )
        return self

    @property
    def basemap_templates(self) -> list[str]:
        """The basemap's URLs: XYZ templates bottom to top, or the one style URL."""
        return self.basemap_url.split()

    @property
    def basemap_style(self) -> bool:
        """True when the basemap is a MapLibre style rather than XYZ raster tiles."""
        urls = self.basemap_templates
        return bool(urls) and not all("{z}" in u for u in urls)

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The same database as a SQLAlchemy URL using the psycopg 3 driver (for Alembic)."""
        url = self.database_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
