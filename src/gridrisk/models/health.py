"""Response models of the liveness and health probes."""

from pydantic import BaseModel


class Livez(BaseModel):
    status: str


class HealthPublic(BaseModel):
    status: str
    version: str
    database: str
    postgres: str
    postgis: str
    revision: str | None
    # With GRIDRISK_REPLICA_URLS: {max_lag_s, primary_reads, replicas: [{name, up, in_rotation,
    # lag_s, replay_lsn, reads, error}]}.
    replication: dict | None = None
