"""A city far from Nanjing measures right: the profile's metric CRS, checked against geodesic areas."""

from __future__ import annotations

import json

import numpy as np
import psycopg
import pytest
import shapely
from conftest import _make_keys, bearer, make_client
from pyproj import Geod, Transformer
from typer.testing import CliRunner

from gridrisk.cli import app
from gridrisk.geometry.metric_crs import MetricCRSError, check_metric_epsg, metric_epsg_for, parse_epsg
from gridrisk.imports.grid_import import import_layer_file
from gridrisk.services.city import read_profile, update_profile
from gridrisk.services.districts import load_districts

GEOD = Geod(ellps="GRS80")  # CGCS2000's ellipsoid
# name, centre (lon, lat), the CGCS2000 3° zone expected there
CITIES = [
    ("成都市", (104.06, 30.66), 4544),  # CM 105E
    ("乌鲁木齐市", (87.62, 43.82), 4538),  # CM 87E
]


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (118.80, 32.05, 4549),  # Nanjing: CM 120E
        (104.06, 30.66, 4544),  # Chengdu: CM 105E
        (87.62, 43.82, 4538),  # Urumqi: CM 87E
        (126.63, 45.75, 4551),  # Harbin: CM 126E
        (116.40, 39.90, 4548),  # Beijing: CM 117E
        (75.99, 39.47, 4534),  # Kashgar: CM 75E, the westernmost zone
        (13.40, 52.52, 32633),  # Berlin: UTM 33N
        (151.21, -33.87, 32756),  # Sydney: UTM 56S
    ],
)
def test_the_metric_crs_is_the_zone_nearest_the_place(lon, lat, epsg):
    assert metric_epsg_for(lon, lat) == epsg
    crs = check_metric_epsg(epsg)
    if 4534 <= epsg <= 4554:  # a CGCS2000 zone whose central meridian is within 1.5° of the place
        meridian = int(crs.name.split("CM ")[1].rstrip("E"))
        assert crs.name.startswith("CGCS2000 / 3-degree Gauss-Kruger CM") and abs(meridian - lon) <= 1.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("EPSG:4326", "not projected"),
        ("EPSG:2263", "not metres"),
        ("EPSG:1", "not a known"),
        ("UTM", "not an EPSG"),
    ],
)
def test_a_crs_that_cannot_measure_is_refused_with_the_reason(text, message):
    with pytest.raises(MetricCRSError, match=message):
        check_metric_epsg(parse_epsg(text))


def _box_layer(bounds: tuple[float, float, float, float], cols: int, rows: int, prefix: str) -> dict:
    """A FeatureCollection of COLS × ROWS boxes tiling BOUNDS exactly (shared edges, same vertices)."""
    w, s, e, n = bounds
    xs = [w + (e - w) * i / cols for i in range(cols)] + [e]
    ys = [s + (n - s) * j / rows for j in range(rows)] + [n]
    features = [
        {
            "type": "Feature",
            "properties": {"code": f"{prefix}{i:02d}{j:02d}", "name": f"{prefix} 第{i}-{j}格"},
            "geometry": shapely.geometry.mapping(shapely.box(xs[i], ys[j], xs[i + 1], ys[j + 1])),
        }
        for i in range(cols)
        for j in range(rows)
    ]
    return {"type": "FeatureCollection", "features": features}


def _geodesic_area(geom: shapely.Geometry) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def _cells(conn: psycopg.Connection, layer: str) -> list[tuple[str, shapely.Geometry, float]]:
    rows = conn.execute(
        "SELECT code, ST_AsBinary(geom), area_m2 FROM cells WHERE layer = %s ORDER BY code", (layer,)
    ).fetchall()
    return [(code, shapely.from_wkb(bytes(wkb)), area) for code, wkb, area in rows]


@pytest.fixture(params=CITIES, ids=["chengdu", "urumqi"])
def second_city(request, db_url, tmp_path):
    """A synthetic two-district city at the place, with a comprehensive and an emergency grid."""
    name, (lon, lat), epsg = request.param
    bounds = (lon - 0.1, lat - 0.08, lon + 0.1, lat + 0.08)
    districts = _box_layer(bounds, 2, 1, "D")
    for i, f in enumerate(districts["features"]):
        f["properties"] = {"code": f"9{i}", "name": f"{name[:-1]}第{i + 1}区", "population": 400_000}
    path = tmp_path / "districts.geojson"
    path.write_text(json.dumps(districts, ensure_ascii=False), encoding="utf-8")
    with psycopg.connect(db_url) as conn:
        load_districts(conn, path, coordinates="WGS84", city_name=name)
    reports = {}
    for layer, cols, rows in (("comprehensive", 10, 8), ("emergency", 4, 4)):
        grid = tmp_path / f"{layer}.geojson"
        grid.write_text(json.dumps(_box_layer(bounds, cols, rows, layer[0].upper())), encoding="utf-8")
        outcome = import_layer_file(db_url, layer, grid, source=grid.name)
        assert outcome.ok, outcome.report
        reports[layer] = outcome.report
    return {"url": db_url, "name": name, "centre": (lon, lat), "epsg": epsg, "reports": reports}


def test_cell_areas_and_overlaps_agree_with_geodesic_ones(second_city):
    epsg = second_city["epsg"]
    with psycopg.connect(second_city["url"]) as conn:
        profile = read_profile(conn)
        assert (profile.name, profile.metric.epsg, profile.metric_crs_auto) == (
            second_city["name"],
            epsg,
            True,
        )
        # The Nanjing zone (CM 120E) would be far off here: the check below could fail.
        nanjing_zone = Transformer.from_crs(4326, 4549, always_xy=True)
        checked = 0
        for layer in ("district", "comprehensive", "emergency"):
            for code, geom, area in _cells(conn, layer):
                truth = _geodesic_area(geom)
                assert abs(area / truth - 1) < 0.001, (layer, code, area, truth)
                assert abs(_planar_area(geom, nanjing_zone) / truth - 1) > 0.01
                checked += 1
        assert checked == 2 + 80 + 16
        comprehensive = {code: geom for code, geom, _ in _cells(conn, "comprehensive")}
        emergency = {code: geom for code, geom, _ in _cells(conn, "emergency")}
        pairs = conn.execute(
            "SELECT code, other_code, area_m2, share FROM cell_overlaps"
            " WHERE layer = 'comprehensive' AND other_layer = 'emergency'"
        ).fetchall()
    assert len(pairs) >= 80  # every comprehensive cell overlaps at least one emergency cell
    for code, other, area, share in pairs:
        truth = _geodesic_area(comprehensive[code].intersection(emergency[other]))
        assert abs(area / truth - 1) < 0.001, (code, other, area, truth)
        assert abs(share - truth / _geodesic_area(comprehensive[code])) < 0.001
    for report in second_city["reports"].values():  # the import checks measured in the same CRS
        assert report["summary"]["metric_crs"] == f"EPSG:{epsg}"
        # Gaps: only the lens between the city's 10 km edges and the cells' 2 km ones, which are
        # straight lines of longitude and latitude but not straight in any projection (ours, 0.004%).
        city_area = report["summary"]["cell_area_m2"]
        assert report["errors"] == [] and report["summary"]["gap_area_m2"] < 1e-4 * city_area


def _planar_area(geom: shapely.Geometry, transformer: Transformer) -> float:
    return shapely.area(shapely.transform(geom, lambda xy: np.column_stack(transformer.transform(*xy.T))))


def test_shelter_service_areas_agree_with_geodesic_distances(second_city):
    lon, lat = second_city["centre"]
    key = _make_keys(second_city["url"])["operator"]
    radius = {"emergency": 500, "fixed": 2500, "central": 3990}
    sites = [
        ("emergency", lon - 0.031, lat + 0.012),
        ("fixed", lon + 0.05, lat - 0.03),
        ("central", lon, lat),
    ]
    with make_client(second_city["url"]) as client:
        ids = {}
        for i, (cls, x, y) in enumerate(sites):
            body = {
                "code": f"SC-{i}",
                "name": f"避难场所{i}",
                "class": cls,
                "capacity": 1000,
                "geometry": {"type": "Point", "coordinates": [x, y]},
            }
            r = client.post("/shelters", json=body, headers=bearer(key))
            assert r.status_code == 201, r.text
            ids[r.json()["id"]] = (cls, x, y)
        report = client.get("/shelters/coverage", params={"layer": "comprehensive"}).json()
    with psycopg.connect(second_city["url"]) as conn:
        centroids = {code: geom.centroid for code, geom, _ in _cells(conn, "comprehensive")}
    decided = 0
    for cell in report["cells"]:
        c = centroids[cell["code"]]
        for shelter_id, (cls, x, y) in ids.items():
            distance = GEOD.inv(x, y, c.x, c.y)[2]
            if abs(distance / radius[cls] - 1) < 0.001:
                continue  # on the circle, within the tolerance: either answer is right
            assert (shelter_id in cell["shelters"]) == (distance <= radius[cls]), (
                cell["code"],
                cls,
                distance,
            )
            decided += 1
    assert decided >= 3 * 80 - 3
    assert sum(1 for cell in report["cells"] if cell["shelters"]) > 10


def test_the_api_and_the_cli_show_the_city(second_city):
    with make_client(second_city["url"]) as client:
        body = client.get("/city").json()
    lon, lat = second_city["centre"]
    assert body["name"] == second_city["name"] and body["metric_crs"] == f"EPSG:{second_city['epsg']}"
    assert body["metric_crs_auto"] is True and body["districts"] == 2
    assert body["centre"] == pytest.approx([lon, lat], abs=1e-9)
    assert body["bbox"] == pytest.approx([lon - 0.1, lat - 0.08, lon + 0.1, lat + 0.08], abs=1e-9)
    out = CliRunner().invoke(app, ["city", "show"], env={"GRIDRISK_DATABASE_URL": second_city["url"]})
    assert out.exit_code == 0 and f"EPSG:{second_city['epsg']}" in out.output


def test_an_explicit_crs_remeasures_every_area_and_auto_restores_it(db_url):
    with psycopg.connect(db_url) as conn:
        assert read_profile(conn).metric.epsg == 4549  # the Nanjing demo's zone, chosen for it
        before = dict(conn.execute("SELECT code, area_m2 FROM cells WHERE layer = 'district'").fetchall())
        versions = dict(conn.execute("SELECT name, version FROM layers").fetchall())
        profile = update_profile(conn, metric_epsg=32650)  # UTM 50N: Nanjing is 1.2° east of its meridian
        assert (profile.metric.epsg, profile.metric_crs_auto) == (32650, False)
        after = dict(conn.execute("SELECT code, area_m2 FROM cells WHERE layer = 'district'").fetchall())
        moved = dict(conn.execute("SELECT name, version FROM layers").fetchall())
        assert moved["district"] == versions["district"] + 1
        for code, area in before.items():  # UTM: scale 0.9996 at its meridian, 0.01–0.2% apart
            assert 0.0001 < abs(after[code] / area - 1) < 0.002
        with pytest.raises(MetricCRSError, match="not projected"):
            update_profile(conn, metric_epsg=4490)
        conn.rollback()
        with conn.transaction():
            update_profile(conn, metric_epsg=32650)
            restored = update_profile(conn, auto=True)
        assert (restored.metric.epsg, restored.metric_crs_auto) == (4549, True)
        again = dict(conn.execute("SELECT code, area_m2 FROM cells WHERE layer = 'district'").fetchall())
    assert again == pytest.approx(before, rel=1e-12)


def test_city_init_sets_up_a_city_from_its_file(db_url, tmp_path):
    districts = _box_layer((87.52, 43.74, 87.72, 43.90), 2, 1, "D")
    for i, f in enumerate(districts["features"]):
        f["properties"] = {"code": f"65010{i}", "name": f"第{i + 1}区"}
    path = tmp_path / "urumqi.geojson"
    path.write_text(json.dumps(districts, ensure_ascii=False), encoding="utf-8")
    env = {"GRIDRISK_DATABASE_URL": db_url}
    runner = CliRunner()
    out = runner.invoke(
        app, ["city", "init", str(path), "--name", "乌鲁木齐市", "--name-en", "Urumqi"], env=env
    )
    assert out.exit_code == 0, out.output
    assert "乌鲁木齐市 (Urumqi); metric CRS EPSG:4538" in out.output
    bad = runner.invoke(app, ["city", "set", "--metric-crs", "EPSG:4326"], env=env)
    assert bad.exit_code == 1 and "not projected" in bad.output
    with psycopg.connect(db_url) as conn:
        assert read_profile(conn).metric.epsg == 4538  # the refused change left it as it was
        codes = [r[0] for r in conn.execute("SELECT code FROM cells WHERE layer = 'district' ORDER BY code")]
    assert codes == ["650100", "650101"]
