"""Grids: layers and cells, the crosswalk, and "which cell am I in" checked against shapely."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
import shapely
from conftest import assert_problem

from gridrisk.services.layers import GRID_LAYERS


def _layer_geoms(url: str, layer: str) -> tuple[list[str], np.ndarray]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, ST_AsBinary(geom) FROM cells WHERE layer = %s ORDER BY code", (layer,)
        ).fetchall()
    return [r[0] for r in rows], shapely.from_wkb([bytes(r[1]) for r in rows])


def _expected(codes: list[str], geoms: np.ndarray, points: np.ndarray) -> list[str | None]:
    """Independent answer: the smallest code among the cells that intersect each point."""
    tree = shapely.STRtree(geoms)
    pt_idx, geom_idx = tree.query(points, predicate="intersects")
    best: dict[int, str] = {}
    for p, g in zip(pt_idx, geom_idx, strict=True):
        code = codes[g]
        if p not in best or code < best[p]:
            best[p] = code
    return [best.get(i) for i in range(len(points))]


@pytest.fixture
def sample_points(city_db_url) -> np.ndarray:
    """3,000 random points over the demo city's box (inside and outside) plus 500 cell vertices."""
    codes, geoms = _layer_geoms(city_db_url, "safety")
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    rng = np.random.default_rng(11)
    pad = 0.02
    xs = rng.uniform(minx - pad, maxx + pad, 3000)
    ys = rng.uniform(miny - pad, maxy + pad, 3000)
    # Vertices of the comprehensive cells lie exactly on shared edges: the tie-break rule is tested.
    _, cgeoms = _layer_geoms(city_db_url, "comprehensive")
    verts = shapely.get_coordinates(cgeoms)
    pick = verts[rng.choice(len(verts), 500, replace=False)]
    return np.vstack([np.column_stack([xs, ys]), pick])


def test_lookup_agrees_with_shapely(city_client, city_db_url, sample_points):
    r = city_client.post("/cells/at", json={"points": sample_points.tolist()})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert r.json()["count"] == len(sample_points) == len(results)
    points = shapely.points(sample_points)
    inside = 0
    for layer in GRID_LAYERS:
        codes, geoms = _layer_geoms(city_db_url, layer)
        expected = _expected(codes, geoms, points)
        got = [(res["cells"][layer] or {}).get("code") for res in results]
        mismatches = [(i, e, g) for i, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]
        assert not mismatches, f"{layer}: {len(mismatches)} mismatches, first {mismatches[:5]}"
        inside += sum(e is not None for e in expected)
    assert inside > 1000  # the sample really exercised inside points ...
    assert any(res["cells"]["safety"] is None for res in results)  # ... and outside ones
    for res, (x, y) in zip(results, sample_points, strict=True):
        assert res["lon"] == pytest.approx(x) and res["lat"] == pytest.approx(y)


def test_lookup_is_stable_on_shared_vertices(city_client, city_db_url):
    _, geoms = _layer_geoms(city_db_url, "comprehensive")
    vertex = shapely.get_coordinates(geoms[0])[1]
    answers = {
        tuple(
            (layer, (cell or {}).get("code"))
            for layer, cell in city_client.get("/cells/at", params={"lon": vertex[0], "lat": vertex[1]})
            .json()["cells"]
            .items()
        )
        for _ in range(5)
    }
    assert len(answers) == 1


def test_single_point_answer_has_cells_workers_and_admin(city_client, city_db_url):
    codes, geoms = _layer_geoms(city_db_url, "comprehensive")
    p = shapely.point_on_surface(geoms[3])
    r = city_client.get("/cells/at", params={"lon": p.x, "lat": p.y})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["inside_city"] is True
    assert body["cells"]["comprehensive"]["code"] == codes[3]
    assert body["cells"]["comprehensive"]["workers"][0]["name"]
    assert body["cells"]["comprehensive"]["workers"][0]["phone"]
    assert set(body["cells"]) == set(GRID_LAYERS)
    assert body["admin"]["district"]["code"] == body["cells"]["comprehensive"]["district_code"]
    assert body["admin"]["street"] is None


def test_outside_the_city_is_404_and_bad_coordinates_422(city_client):
    body = assert_problem(city_client.get("/cells/at", params={"lon": 100.0, "lat": 30.0}), 404)
    assert "outside the city" in body["detail"]
    assert_problem(city_client.get("/cells/at", params={"lon": 118.8, "lat": 95}), 422)
    assert_problem(city_client.get("/cells/at", params={"lon": "nan", "lat": 32}), 422)
    assert_problem(city_client.get("/cells/at", params={"lat": 32}), 422)


def test_batch_limits_and_forms(city_client):
    over = [[118.79, 32.05]] * 10_001
    assert_problem(city_client.post("/cells/at", json={"points": over}), 413)
    r = city_client.post(
        "/cells/at", json={"type": "MultiPoint", "coordinates": [[118.79, 32.05], [100, 30]]}
    )
    assert r.status_code == 200
    res = r.json()["results"]
    assert res[1]["inside_city"] is False and all(v is None for v in res[1]["cells"].values())
    assert_problem(city_client.post("/cells/at", json={"points": [[118.79, 132.05]]}), 422)
    assert_problem(city_client.post("/cells/at", json={"type": "Point", "coordinates": [[1, 2]]}), 422)
    assert_problem(
        city_client.post("/cells/at", content=b"{not json", headers={"content-type": "application/json"}), 422
    )


def test_overlay_shares_sum_to_one_where_layers_cover(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        rows = conn.execute(
            "SELECT o.layer, o.code, o.other_layer, sum(o.share) FROM cell_overlaps o"
            " GROUP BY o.layer, o.code, o.other_layer"
        ).fetchall()
        n_cells = conn.execute(
            "SELECT count(*) FROM cells WHERE layer = ANY(%s)", (list(GRID_LAYERS),)
        ).fetchone()[0]
    sums = {(layer, other): [] for layer, _, other, _ in rows}
    for layer, _, other, total in rows:
        sums[(layer, other)].append(total)
    for layer in GRID_LAYERS:
        for other in [*GRID_LAYERS, "district"]:
            if other == layer:
                continue
            values = np.array(sums[(layer, other)])
            # Every grid tiles the same two districts: each cell is fully shared out. Edges are
            # straight in lon/lat, not in EPSG:4549, so cutting them adds up to ~2e-4 of projection noise.
            assert np.allclose(values, 1.0, atol=5e-4), (layer, other, values.min(), values.max())
    assert (
        sum(len(v) for (layer, other), v in sums.items() if other == "district" and layer in GRID_LAYERS)
        == n_cells
    )


def test_overlaps_endpoint_and_cell_district(city_client, city_db_url):
    codes, _ = _layer_geoms(city_db_url, "emergency")
    r = city_client.get(f"/layers/emergency/cells/{codes[0]}/overlaps")
    assert r.status_code == 200
    rows = r.json()
    layers = {row["layer"] for row in rows}
    assert {"comprehensive", "safety", "district"} <= layers
    comp = [row for row in rows if row["layer"] == "comprehensive"]
    assert sum(row["share"] for row in comp) == pytest.approx(1.0, abs=5e-4)
    assert all(0 < row["share"] <= 1 and 0 < row["other_share"] <= 1 for row in rows)
    cell = city_client.get(f"/layers/emergency/cells/{codes[0]}").json()
    best = max((row for row in rows if row["layer"] == "district"), key=lambda row: row["share"])
    assert cell["properties"]["district_code"] == best["code"]
    assert_problem(city_client.get("/layers/emergency/cells/NOPE/overlaps"), 404)
    assert_problem(city_client.get("/layers/nolayer/cells/X"), 404)


def test_layers_list_and_paging(city_client):
    layers = {layer["name"]: layer for layer in city_client.get("/layers").json()}
    assert set(GRID_LAYERS) | {"district", "street", "community"} <= layers.keys()
    assert layers["district"]["cell_count"] == 2
    n = layers["safety"]["cell_count"]
    assert n > 100
    seen, url, pages = [], "/layers/safety/cells?limit=100", 0
    while url:
        page = city_client.get(url).json()
        assert page["numberMatched"] == n
        assert page["numberReturned"] == len(page["features"])
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        pages += 1
    assert len(seen) == len(set(seen)) == n and pages == -(-n // 100)
    bbox = layers["safety"]["bbox"]
    small = [bbox[0], bbox[1], (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2]
    part = city_client.get(
        "/layers/safety/cells", params={"bbox": ",".join(map(str, small)), "limit": 10000}
    ).json()
    assert 0 < part["numberMatched"] < n
    assert_problem(city_client.get("/layers/safety/cells", params={"bbox": "1,2,3"}), 422)
    assert_problem(city_client.get("/layers/safety/cells", params={"bbox": "5,5,1,1"}), 422)
    assert_problem(city_client.get("/layers/safety/cells", params={"limit": 0}), 422)


def test_demo_cells_nest_in_districts_and_keep_population(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        crossing = conn.execute(
            "SELECT count(*) FROM cell_overlaps"
            " WHERE layer = ANY(%s) AND other_layer = 'district' AND share < 0.999",
            (list(GRID_LAYERS),),
        ).fetchone()[0]
        pops = conn.execute(
            "SELECT c.layer, c.district_code, sum(c.population), d.population FROM cells c"
            " JOIN cells d ON d.layer = 'district' AND d.code = c.district_code"
            " WHERE c.layer = ANY(%s) GROUP BY c.layer, c.district_code, d.population",
            (list(GRID_LAYERS),),
        ).fetchall()
    assert crossing == 0
    assert len(pops) == 6
    assert all(total == district_pop for _, _, total, district_pop in pops)
