"""Service configuration, read from the environment with the prefix GRIDRISK_."""

from functools import cached_property

from pydantic import Field
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
    max_body_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    # Vector-tile cache per worker, in MiB; 0 turns it off (tiles are then rendered every time).
    tile_cache_mb: int = Field(default=128, ge=0)

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The same database as a SQLAlchemy URL using the psycopg 3 driver (for Alembic)."""
        url = self.database_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url
