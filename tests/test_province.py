"""The scale ladder's province: the demo city copied N times, every layer and registry with it."""

from __future__ import annotations

import psycopg
import pytest

from gridrisk.demo.province import build_province, copy_code, offset
from gridrisk.services.risk_map import verify


def _counts(conn) -> dict:
    layers = dict(conn.execute("SELECT layer, count(*) FROM cells GROUP BY layer").fetchall())
    for table in ("risk_sources", "hazard_points", "shelters", "cell_workers", "source_cells"):
        layers[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return layers


def test_codes_and_offsets():
    assert copy_code("SAF-320115-0773", 2) == "SAF-320315-0773"
    assert copy_code("320102", 1) == "320202"
    assert copy_code("RS-000042", 3) == "RS-000042-3"
    assert offset(0, 10) == (0, 0) and offset(5, 10) == (1.0, 1.5)  # 4 columns for 10 copies


def test_a_province_of_three_is_three_exact_cities(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        conn.execute("SELECT setseed(0.5)")
        conn.execute(
            "INSERT INTO risk_sources"
            " (code, name, category, geom, method, override_level, created_by, updated_by)"
            " SELECT 'RS-P-' || i, '测试源', 'gas', ST_GeometryN(mp, i), 'direct',"
            " (ARRAY['red', 'orange', 'yellow', 'blue'])[1 + i % 4], 't', 't'"
            " FROM (SELECT ST_GeneratePoints(ST_Union(geom), 60, 5) mp"
            " FROM cells WHERE layer = 'district') p,"
            " generate_series(1, 60) i"
        )
        conn.execute(
            "INSERT INTO hazard_points (code, name, kind, geom, level, created_by, updated_by)"
            " SELECT 'YH-320102-P-' || code, '测试隐患', 'waterlogging', ST_PointOnSurface(geom),"
            " 'orange', 't', 't' FROM cells WHERE layer = 'emergency' ORDER BY code LIMIT 5"
        )
        before = _counts(conn)
        assert before["risk_sources"] > 0 and before["hazard_points"] > 0
        summary = build_province(conn, 3)
        after = _counts(conn)
        assert after == {k: 3 * v for k, v in before.items()}, summary
        # Copy 2 is Nanjing moved by its offset, with its own codes, names and district codes.
        dx, dy = offset(2, 3)
        moved = conn.execute(
            "SELECT count(*) FROM cells a JOIN cells b ON b.layer = a.layer"
            " AND b.code = replace(a.code, '3201', '3203')"
            " WHERE a.layer = 'safety' AND a.code LIKE '%%3201%%'"
            " AND ST_Equals(ST_Translate(a.geom, %s, %s), b.geom)"
            " AND b.district_code = replace(a.district_code, '3201', '3203') AND b.name LIKE '徐州·%%'",
            (dx, dy),
        ).fetchone()[0]
        assert moved == before["safety"]
        # Each copy's map is the original's: the same colours, cell for cell.
        differ = conn.execute(
            "SELECT count(*) FROM cell_risk a JOIN cell_risk b ON b.layer = a.layer"
            " AND b.code = replace(a.code, '3201', '3202')"
            " WHERE a.code LIKE '%3201%'"
            " AND (a.colour, a.n_red, a.n_blue) IS DISTINCT FROM (b.colour, b.n_red, b.n_blue)"
        ).fetchone()[0]
        assert differ == 0
        assert verify(conn) == []
        with pytest.raises(ValueError, match="already holds a province"):
            build_province(conn, 2)
