"""Test fixtures on a real PostGIS: migrated template databases, cloned per test, and app clients."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from gridrisk.api_keys import create_key
from gridrisk.db import migrate
from gridrisk.main import create_app
from gridrisk.settings import Settings

# Rate limits are off for the suite (its tests write and read far faster than any person);
# tests/test_stress.py turns them on where it tests them. Servers started as processes inherit this.
os.environ.setdefault("GRIDRISK_RATE_LIMIT_WRITES", "")
os.environ.setdefault("GRIDRISK_RATE_LIMIT_HEAVY", "")

BASE_URL = os.environ.get("GRIDRISK_DATABASE_URL", "postgresql://gridrisk@127.0.0.1:25432/gridrisk_test")
PREFIX = psycopg.conninfo.conninfo_to_dict(BASE_URL).get("dbname", "gridrisk_test")
_counter = itertools.count()


def url_for(dbname: str) -> str:
    """The test server's URL with another database name."""
    params = psycopg.conninfo.conninfo_to_dict(BASE_URL)
    params["dbname"] = dbname
    user = params.get("user", "")
    auth = f"{user}:{params['password']}@" if params.get("password") else (f"{user}@" if user else "")
    return f"postgresql://{auth}{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}/{dbname}"


def admin_conn() -> psycopg.Connection:
    return psycopg.connect(url_for("postgres"), autocommit=True)


def recreate(dbname: str, template: str | None = None) -> None:
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if template:
            conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        else:
            conn.execute(f'CREATE DATABASE "{dbname}"')


def drop(dbname: str) -> None:
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def _build_template(name: str, build) -> str:
    # Per test session (pid): concurrent runs on one server must not rebuild each other's template.
    dbname = f"{PREFIX}_tpl_{name}_{os.getpid()}"
    recreate(dbname)
    settings = Settings(database_url=url_for(dbname))
    migrate.upgrade(settings)
    with psycopg.connect(settings.database_url) as conn:
        build(conn)
    with admin_conn() as conn:  # no lingering sessions, or CREATE DATABASE ... TEMPLATE fails
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        )
    return dbname


@pytest.fixture(scope="session")
def template_base() -> Iterator[str]:
    """Migrated database with Nanjing's 11 districts (converted to WGS 84)."""
    from gridrisk.services.districts import load_districts

    name = _build_template("base", lambda conn: load_districts(conn))
    yield name
    drop(name)


CITY_DISTRICTS = ["320102", "320104"]


@pytest.fixture(scope="session")
def template_city() -> Iterator[str]:
    """A small demo city: two old-city districts (玄武, 秦淮) and their three grids at 3% of the counts."""
    from gridrisk.demo.build import build_demo
    from gridrisk.services.districts import load_districts

    def build(conn):
        load_districts(conn, codes=CITY_DISTRICTS)
        build_demo(conn, seed=7, scale=0.03)

    name = _build_template("city", build)
    yield name
    drop(name)


def _clone(template: str) -> Iterator[str]:
    dbname = f"{PREFIX}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    recreate(dbname, template)
    try:
        yield url_for(dbname)
    finally:
        drop(dbname)


@pytest.fixture
def db_url(template_base) -> Iterator[str]:
    """A private copy of the base template for one test: commit freely, it is dropped after."""
    yield from _clone(template_base)


@pytest.fixture
def city_db_url(template_city) -> Iterator[str]:
    """A private copy of the small demo city for one test."""
    yield from _clone(template_city)


def make_client(url: str, **overrides) -> TestClient:
    settings = Settings(database_url=url, pool_min_size=1, pool_max_size=8, **overrides)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture
def client(db_url) -> Iterator[TestClient]:
    with make_client(db_url) as c:
        yield c


@pytest.fixture
def city_client(city_db_url) -> Iterator[TestClient]:
    with make_client(city_db_url) as c:
        yield c


@pytest.fixture
def keys(db_url) -> dict[str, str]:
    """One key per role in the test's database: {'admin': 'grk_…', ...}."""
    return _make_keys(db_url)


@pytest.fixture
def city_keys(city_db_url) -> dict[str, str]:
    return _make_keys(city_db_url)


def _make_keys(url: str) -> dict[str, str]:
    out = {}
    with psycopg.connect(url) as conn:
        for role in ("admin", "operator", "worker", "viewer"):
            out[role] = create_key(conn, f"test-{role}", role)[1]
    return out


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(response, status: int) -> dict:
    """The response is problem+json with STATUS and the RFC 9457 members."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body
