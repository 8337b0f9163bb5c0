"""OGC API – Features Part 2: answers and bboxes in CGCS2000, its Gauss-Kruger zone, EPSG:4326 and Web
Mercator, in each CRS's own axis order, checked against pyproj; GCJ-02 as a non-standard output; GDAL."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from test_ogc import city, db_rows, http, server  # noqa: F401, F811  (the live server on the demo city)

from gridrisk.geometry.gcj02 import wgs84_to_gcj02
from gridrisk.ogc.crs import CRS84, epsg_uri

CRS_CLASS = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs"
SERVED = [epsg_uri(4326), epsg_uri(4490), epsg_uri(3857), epsg_uri(4549)]


def _coords(geometry: dict) -> np.ndarray:
    return np.array(shapely.get_coordinates(shapely.geometry.shape(geometry)))


def _page(http, cid: str, **params) -> tuple[dict, dict]:  # noqa: F811
    r = http.get(f"/ogc/collections/{cid}/items", params={"limit": 25, **params})
    assert r.status_code == 200, r.text
    return r.json(), r.headers


def test_conformance_and_collections_list_the_crs(http):  # noqa: F811
    assert CRS_CLASS in http.get("/ogc/conformance").json()["conformsTo"]
    body = http.get("/ogc/collections").json()
    assert body["crs"] == [CRS84, *SERVED]
    for c in body["collections"]:
        assert c["crs"] == body["crs"] and c["storageCrs"] == CRS84


@pytest.mark.parametrize("epsg", [4326, 4490, 4549, 3857])
@pytest.mark.parametrize("cid", ["safety", "shelters", "vulnerable_sites"])
def test_items_in_each_crs_are_the_crs84_ones_transformed_by_pyproj(http, cid, epsg):  # noqa: F811
    base, _ = _page(http, cid)
    got, headers = _page(http, cid, crs=epsg_uri(epsg))
    assert headers["content-crs"] == f"<{epsg_uri(epsg)}>"
    assert [f["id"] for f in got["features"]] == [f["id"] for f in base["features"]]
    # Without always_xy: pyproj answers in the CRS's own axis order (lat first, northing first).
    to = Transformer.from_crs("OGC:CRS84", f"EPSG:{epsg}")
    # The CRS84 answer is rounded to 1e-7° (about a centimetre) before pyproj transforms it.
    tolerance = 0.02 if epsg in (4549, 3857) else 2e-7
    for a, b in zip(base["features"], got["features"], strict=True):
        lonlat = _coords(a["geometry"])
        x, y = to.transform(lonlat[:, 0], lonlat[:, 1])
        assert np.abs(_coords(b["geometry"]) - np.column_stack([x, y])).max() < tolerance, (cid, epsg)
    if epsg in (4326, 4490):  # latitude first, plainly
        first = _coords(got["features"][0]["geometry"])[0]
        assert 31 < first[0] < 33 and 118 < first[1] < 120


def test_a_bbox_in_another_crs_selects_what_intersects_it_there(http, city):  # noqa: F811
    rows = db_rows(city, "safety")
    lon0, lat0, lon1, lat1 = 118.79, 32.03, 118.81, 32.05
    base, _ = _page(http, "safety", bbox=f"{lon0},{lat0},{lon1},{lat1}", limit=1000)
    in_4326, _ = _page(
        http, "safety", bbox=f"{lat0},{lon0},{lat1},{lon1}", limit=1000, **{"bbox-crs": "EPSG:4326"}
    )
    assert {f["id"] for f in in_4326["features"]} == {f["id"] for f in base["features"]}
    # A box in EPSG:3857: what intersects it, computed independently (its outline densified, in lon/lat).
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True)
    x0, y0 = to_merc.transform(lon0, lat0)
    x1, y1 = to_merc.transform(lon1, lat1)
    box = shapely.segmentize(shapely.box(x0, y0, x1, y1), (x1 - x0) / 200)
    back = Transformer.from_crs(3857, 4326, always_xy=True)
    outline = shapely.transform(box, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))
    want = {i for i, r in rows.items() if outline.intersects(shapely.from_wkb(bytes(r["wkb"])))}
    got, _ = _page(http, "safety", bbox=f"{x0},{y0},{x1},{y1}", limit=1000, **{"bbox-crs": epsg_uri(3857)})
    assert {f["id"] for f in got["features"]} == want and want


def test_one_item_and_gcj02_output(http):  # noqa: F811
    page, _ = _page(http, "shelters", limit=3)
    fid = page["features"][0]["id"]
    r = http.get(f"/ogc/collections/shelters/items/{fid}", params={"crs": "EPSG:4490"})
    assert r.headers["content-crs"] == f"<{epsg_uri(4490)}>"
    lonlat = _coords(page["features"][0]["geometry"])
    assert np.abs(_coords(r.json()["geometry"]) - lonlat[:, ::-1]).max() < 2e-7
    gcj, headers = _page(http, "shelters", limit=3, crs="GCJ-02")
    assert headers["content-crs"].startswith("<https://gridrisk.dev/def/crs/GCJ-02")
    for a, b in zip(page["features"], gcj["features"], strict=True):
        xy = _coords(a["geometry"])
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        assert np.abs(_coords(b["geometry"]) - np.column_stack([lon, lat])).max() < 2e-7
        assert np.abs(_coords(b["geometry"]) - xy).max() > 1e-3  # hundreds of metres away: really shifted


def test_gdal_reads_collections_in_cgcs2000(server, city):  # noqa: F811
    url = f"OAPIF:{server}/ogc"
    for cid in ("shelters", "emergency"):
        df = pyogrio.read_dataframe(url, layer=cid, CRS="EPSG:4490", fid_as_index=cid == "shelters")
        info = pyogrio.read_info(url, layer=cid, CRS="EPSG:4490")
        assert "4490" in info["crs"]
        rows = db_rows(city, cid)
        key = df.index if cid == "shelters" else df["id"]
        assert len(df) == len(rows)
        for fid, geom in zip(key, df.geometry.values, strict=True):
            want = shapely.from_wkb(bytes(rows[int(fid) if cid == "shelters" else fid]["wkb"]))
            # GDAL gives x = longitude whatever the CRS's axis order: the same numbers as CRS84.
            assert np.abs(shapely.get_coordinates(geom) - shapely.get_coordinates(want)).max() < 2e-7
