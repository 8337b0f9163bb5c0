"""Foundation: migrations, probes, problem+json, keys and roles, districts, settings."""

from __future__ import annotations

import psycopg
import pytest
from conftest import assert_problem, bearer, drop, make_client, recreate, url_for

from gridrisk.db import migrate
from gridrisk.settings import Settings


def test_migrations_up_and_down_on_an_empty_database():
    name = "gridrisk_test_migrations"
    recreate(name)
    settings = Settings(database_url=url_for(name))
    try:
        assert migrate.current_revision(settings) is None
        migrate.upgrade(settings)
        assert migrate.current_revision(settings) == migrate.head_revision(settings)
        with psycopg.connect(settings.database_url) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
            layers = {r[0] for r in conn.execute("SELECT name FROM layers")}
        assert {"api_keys", "layers", "cells", "cell_overlaps", "cell_workers", "city_parts"} <= tables
        assert {"district", "comprehensive", "emergency", "safety"} <= layers
        migrate.downgrade(settings, "base")
        assert migrate.current_revision(settings) is None
        with psycopg.connect(settings.database_url) as conn:
            left = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        assert left <= {"alembic_version", "spatial_ref_sys"}
        migrate.upgrade(settings)  # and up again: downgrade left nothing behind that blocks it
        assert migrate.current_revision(settings) == migrate.head_revision(settings)
    finally:
        drop(name)


def test_schema_matches_the_table_definitions(db_url):
    """The migrations produce exactly the GeoAlchemy2 tables (the single source of the schema)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from gridrisk.db.tables import metadata

    engine = create_engine(Settings(database_url=db_url).sqlalchemy_url)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": migrate.include_object})
        diff = compare_metadata(ctx, metadata)
    engine.dispose()
    assert diff == []


def test_livez_answers_without_a_database():
    with make_client("postgresql://nobody@127.0.0.1:1/none", pool_timeout_s=0.5) as client:
        r = client.get("/livez")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        h = client.get("/health")
        body = assert_problem(h, 503)
        assert "unreachable" in body["detail"]
        assert "127.0.0.1" not in h.text and "nobody" not in h.text  # no connection details leak


def test_health_reports_postgis_and_revision(client):
    r = client.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["postgis"].startswith("3.")
    assert body["revision"] == migrate.head_revision(Settings())


def test_districts_are_the_eleven_converted_to_wgs84(client):
    r = client.get("/districts")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == 11
    codes = [f["properties"]["code"] for f in fc["features"]]
    assert codes[0] == "320102" and codes[-1] == "320118"
    total_km2 = sum(f["properties"]["area_m2"] for f in fc["features"]) / 1e6
    assert total_km2 == pytest.approx(6587, rel=0.002)  # SPEC: the city's official 6,587 km²
    assert sum(f["properties"]["population"] for f in fc["features"]) == pytest.approx(9.31e6, rel=0.01)
    xuanwu = next(f for f in fc["features"] if f["properties"]["code"] == "320102")
    assert xuanwu["properties"]["name"] == "玄武区"
    assert xuanwu["geometry"]["type"] == "MultiPolygon"


def test_districts_are_shifted_from_gcj02_by_the_expected_offset(db_url):
    """Stored outlines sit a few hundred metres south-west of the GCJ-02 file, as GCJ-02 demands."""
    import geopandas as gpd

    from gridrisk.services.districts import default_districts_path

    raw = gpd.read_file(default_districts_path()).set_index("code")
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT code, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM cells WHERE layer='district'"
        ).fetchall()
    for code, x, y in rows:
        c = raw.loc[code].geometry.centroid
        dx_m, dy_m = (x - c.x) * 94_000, (y - c.y) * 111_000
        assert 200 < (dx_m**2 + dy_m**2) ** 0.5 < 900, code
        assert dx_m < 0  # WGS 84 is west of GCJ-02 around Nanjing


def test_unknown_route_is_problem_json(client):
    body = assert_problem(client.get("/no-such-thing"), 404)
    assert body["type"].startswith("https://")


def test_validation_error_names_the_field(client):
    body = assert_problem(client.get("/cells/at", params={"lon": "east", "lat": 32}), 422)
    assert any(e["field"] == "lon" for e in body["errors"])
    body = assert_problem(client.get("/cells/at", params={"lon": 200, "lat": 32}), 422)
    assert "lon" in body["detail"]


def test_bad_bearer_headers_are_401(client):
    url = "/layers/comprehensive/import"
    assert_problem(client.post(url), 401)
    r = client.post(url, headers={"Authorization": "Basic abc"})
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_problem(client.post(url, headers=bearer("grk_deadbeef_nope")), 401)
    assert_problem(client.post(url, headers=bearer("not-a-key")), 401)


def test_roles_are_enforced(client, keys):
    url = "/layers/comprehensive/import"
    for role in ("operator", "worker", "viewer"):
        body = assert_problem(client.post(url, headers=bearer(keys[role])), 403)
        assert role in body["detail"]
    # An admin gets past authorisation (and then fails validation: no file was sent).
    assert_problem(client.post(url, headers=bearer(keys["admin"])), 422)


def test_revoked_key_is_401(db_url, keys):
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'test-admin'")
    with make_client(db_url) as client:
        assert_problem(client.post("/layers/comprehensive/import", headers=bearer(keys["admin"])), 401)


def test_keys_are_stored_only_as_hashes(db_url, keys):
    with psycopg.connect(db_url) as conn:
        stored = " ".join(str(r) for r in conn.execute("SELECT * FROM api_keys").fetchall())
    for key in keys.values():
        assert key not in stored
        assert key.split("_", 2)[2] not in stored  # the secret part may itself contain "_"


def test_private_reads_need_a_key(db_url, keys):
    with make_client(db_url, public_read=False) as client:
        assert_problem(client.get("/districts"), 401)
        assert client.get("/districts", headers=bearer(keys["viewer"])).status_code == 200
        assert client.get("/livez").status_code == 200  # probes stay open for load balancers


def test_oversized_body_is_413(db_url):
    with make_client(db_url, max_body_bytes=2048) as client:
        r = client.post(
            "/cells/at", content=b"[" + b"0," * 5000 + b"0]", headers={"content-type": "application/json"}
        )
        body = assert_problem(r, 413)
        assert "2048" in body["detail"]


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    for path in ("/livez", "/health", "/districts", "/cells/at", "/layers"):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GRIDRISK_PUBLIC_READ", "false")
    monkeypatch.setenv("GRIDRISK_PORT", "9001")
    monkeypatch.setenv("GRIDRISK_CORS_ORIGINS", '["http://map.local"]')
    s = Settings()
    assert s.public_read is False and s.port == 9001 and s.cors_origins == ["http://map.local"]
    assert s.sqlalchemy_url.startswith("postgresql+psycopg://")
