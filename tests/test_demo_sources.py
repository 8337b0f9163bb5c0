"""Demo risk sources: seeded, the intended level mix, inside the city, and colouring the map."""

from __future__ import annotations

import re

import psycopg
import shapely

from gridrisk.demo.sources import build_demo_sources, generate_demo_records

COUNT = 2_000


def _empty_registry(conn: psycopg.Connection) -> None:
    """Start from no sources even if the demo city template ever ships some (then recolour)."""
    if conn.execute("SELECT count(*) FROM risk_sources").fetchone()[0]:
        conn.execute("DELETE FROM risk_sources")
        for (layer,) in conn.execute("SELECT DISTINCT layer FROM cell_risk").fetchall():
            conn.execute("SELECT risk_refresh_layer(%s)", (layer,))
        conn.commit()


def _fingerprint(records) -> list[tuple]:
    return [
        (
            r.values["code"],
            r.values.get("plate_code"),
            r.values["category"],
            r.values.get("lon"),
            r.values.get("lat"),
            r.geometry.wkb if r.geometry is not None else None,
        )
        for r in records
    ]


def test_same_seed_same_sources(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        a = generate_demo_records(conn, seed=5, count=COUNT)
        b = generate_demo_records(conn, seed=5, count=COUNT)
        c = generate_demo_records(conn, seed=6, count=COUNT)
    assert len(a) == COUNT
    assert _fingerprint(a) == _fingerprint(b)
    assert _fingerprint(a) != _fingerprint(c)
    codes = [r.values["code"] for r in a]
    assert len(set(codes)) == COUNT and all(re.fullmatch(r"RS-3201\d\d-\d{6}", code) for code in codes)
    plates = [r.values["plate_code"] for r in a if "plate_code" in r.values]
    assert len(set(plates)) == len(plates) and 0.8 < len(plates) / COUNT < 0.9
    assert all(re.fullmatch(r"NJ-3201\d\d-\d{8}", p) for p in plates)


def test_demo_sources_mix_location_and_map(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        _empty_registry(conn)
        summary = build_demo_sources(conn, seed=5, count=COUNT)
        conn.commit()
        assert summary["skipped"] is False and summary["sources"] == COUNT
        levels = dict(conn.execute("SELECT level, count(*) FROM risk_sources GROUP BY level").fetchall())
        methods = dict(conn.execute("SELECT method, count(*) FROM risk_sources GROUP BY method").fetchall())
        outside = conn.execute(
            "SELECT count(*) FROM risk_sources s WHERE NOT EXISTS"
            " (SELECT 1 FROM city_parts p WHERE p.geom && s.geom AND ST_Intersects(p.geom, s.geom))"
        ).fetchone()[0]
        polygons = conn.execute(
            "SELECT count(*) FROM risk_sources WHERE GeometryType(geom) <> 'POINT'"
        ).fetchone()[0]
        # Every point lies inside one comprehensive cell (checked against the cells, not source_cells).
        points_in_cells = conn.execute(
            "SELECT count(DISTINCT s.id) FROM risk_sources s JOIN cells c ON c.layer = 'comprehensive'"
            " AND ST_Intersects(c.geom, s.geom) WHERE GeometryType(s.geom) = 'POINT'"
        ).fetchone()[0]
        colours = dict(conn.execute("SELECT colour, count(*) FROM cell_risk GROUP BY colour").fetchall())
        direct = conn.execute(
            "SELECT count(*) FROM risk_sources WHERE method = 'direct' AND override_reason IS NULL"
        ).fetchone()[0]
        names = conn.execute("SELECT name, enterprise, department FROM risk_sources LIMIT 50").fetchall()
        again = build_demo_sources(conn, seed=5, count=COUNT)
    share = {k: v / COUNT for k, v in levels.items()}
    assert 0.01 <= share["red"] <= 0.02, levels
    assert 0.08 <= share["orange"] <= 0.10, levels
    assert share["yellow"] + share["blue"] > 0.85 and share["blue"] > share["yellow"], levels
    assert methods["LEC"] > methods["LS"] > methods["direct"] > 0 and direct == 0, methods
    assert outside == 0
    assert 0.03 <= polygons / COUNT <= 0.08
    assert points_in_cells == COUNT - polygons
    assert colours.get("red", 0) > 0 and colours.get("orange", 0) > 0
    assert all(re.search(r"[\u4e00-\u9fff]", n + e + d) for n, e, d in names)
    assert again["skipped"] is True  # never on top of an existing registry


def test_polygons_are_valid_and_near_their_cells(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        records = generate_demo_records(conn, seed=9, count=COUNT)
    polys = [r.geometry for r in records if r.geometry is not None]
    assert polys and all(p.is_valid and p.geom_type == "Polygon" for p in polys)
    # Rectangles of 50–300 m and ponds of up to ~500 m: none larger than about 1 km across.
    assert all(shapely.bounds(p)[2] - shapely.bounds(p)[0] < 0.012 for p in polys)
