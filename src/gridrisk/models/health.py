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
