"""Layer import through the API and the CLI: validation report, atomic replace, stable codes."""

from __future__ import annotations

import io

import geopandas as gpd
import psycopg
import shapely
from conftest import assert_problem, bearer
from typer.testing import CliRunner

from gridrisk.cli import app as cli_app


def _export(url: str, layer: str) -> gpd.GeoDataFrame:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, name, population, ST_AsBinary(geom) FROM cells WHERE layer = %s ORDER BY code",
            (layer,),
        ).fetchall()
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows], "population": [r[2] for r in rows]},
        geometry=shapely.from_wkb([bytes(r[3]) for r in rows]),
        crs=4326,
    )


def _state(url: str, layer: str) -> tuple:
    """Everything an import could change, to prove a rejected import changed nothing."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT version FROM layers WHERE name = %(l)s),"
            " (SELECT md5(string_agg(code || ST_AsEWKB(geom)::text, ',' ORDER BY code))"
            "  FROM cells WHERE layer = %(l)s),"
            " (SELECT count(*) FROM cell_workers WHERE layer = %(l)s),"
            " (SELECT count(*) FROM cell_overlaps WHERE layer = %(l)s)",
            {"l": layer},
        ).fetchone()


def _upload(client, key, layer, gdf, filename="grid.geojson", **form):
    buf = io.BytesIO(gdf.to_json().encode())
    return client.post(
        f"/layers/{layer}/import",
        headers=bearer(key),
        files={"file": (filename, buf, "application/geo+json")},
        data={k: str(v).lower() if isinstance(v, bool) else v for k, v in form.items()},
    )


def test_reimport_keeps_codes_and_workers(city_client, city_db_url, city_keys):
    gdf = _export(city_db_url, "comprehensive")
    version, _, workers, _ = _state(city_db_url, "comprehensive")
    gdf.loc[0, "name"] = "renamed cell"
    r = _upload(city_client, city_keys["admin"], "comprehensive", gdf)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["report"]["ok"] is True
    assert body["result"]["updated"] == len(gdf) and body["result"]["inserted"] == 0
    new_version, _, new_workers, overlaps = _state(city_db_url, "comprehensive")
    assert new_version == version + 1
    assert new_workers == workers == len(gdf)  # every worker still attached by code
    assert overlaps > 0
    cell = city_client.get(f"/layers/comprehensive/cells/{gdf.loc[0, 'code']}").json()
    assert cell["properties"]["name"] == "renamed cell"
    # The file's gap and overlap areas, with the CRS they were measured in (the city's, then).
    (listed,) = [la for la in city_client.get("/layers").json() if la["name"] == "comprehensive"]
    assert listed["gap_area_crs"] == "EPSG:4549" and listed["gap_area_m2"] is not None
    assert cell["properties"]["workers"]


def test_overlapping_file_is_rejected_and_layer_unchanged(city_client, city_db_url, city_keys):
    gdf = _export(city_db_url, "comprehensive")
    before = _state(city_db_url, "comprehensive")
    metric = gdf.to_crs(4549)
    metric.loc[5, "geometry"] = metric.loc[5, "geometry"].buffer(150)
    r = _upload(city_client, city_keys["admin"], "comprehensive", metric.to_crs(4326))
    body = assert_problem(r, 422)
    kinds = {e["kind"] for e in body["report"]["errors"]}
    assert "overlap" in kinds
    overlap = next(e for e in body["report"]["errors"] if e["kind"] == "overlap")
    assert gdf.loc[5, "code"] in overlap["codes"] and overlap["area_m2"] > 1000
    assert "unchanged" in body["detail"]
    assert _state(city_db_url, "comprehensive") == before


def test_duplicate_and_missing_codes_are_rejected(city_client, city_db_url, city_keys):
    gdf = _export(city_db_url, "emergency")
    before = _state(city_db_url, "emergency")
    gdf.loc[1, "code"] = gdf.loc[0, "code"]
    gdf.loc[2, "code"] = None
    body = assert_problem(_upload(city_client, city_keys["admin"], "emergency", gdf), 422)
    kinds = {e["kind"] for e in body["report"]["errors"]}
    assert {"duplicate_code", "missing_code"} <= kinds
    assert _state(city_db_url, "emergency") == before


def test_partial_grid_needs_allow_gaps_and_drops_vanished_cells(city_client, city_db_url, city_keys):
    gdf = _export(city_db_url, "comprehensive")
    kept = gdf.iloc[10:].reset_index(drop=True)
    body = assert_problem(_upload(city_client, city_keys["admin"], "comprehensive", kept), 422)
    assert any(e["kind"] == "gap" for e in body["report"]["errors"])
    r = _upload(city_client, city_keys["admin"], "comprehensive", kept, allow_gaps=True)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["deleted"] == 10
    assert any(w["kind"] == "gap" for w in r.json()["report"]["warnings"])
    _, _, workers, _ = _state(city_db_url, "comprehensive")
    assert workers == len(kept)
    gone = gdf.loc[0, "code"]
    assert_problem(city_client.get(f"/layers/comprehensive/cells/{gone}"), 404)
    layers = {layer["name"]: layer for layer in city_client.get("/layers").json()}
    assert layers["comprehensive"]["gap_area_m2"] > 0


def test_unreadable_upload_and_unknown_layer(city_client, city_keys):
    r = city_client.post(
        "/layers/safety/import",
        headers=bearer(city_keys["admin"]),
        files={"file": ("grid.geojson", io.BytesIO(b"{not geojson"), "application/geo+json")},
    )
    body = assert_problem(r, 422)
    assert body["report"]["errors"][0]["kind"] == "unreadable_file"
    assert "/tmp" not in r.text  # no server paths leak
    r = city_client.post(
        "/layers/nolayer/import",
        headers=bearer(city_keys["admin"]),
        files={"file": ("g.geojson", io.BytesIO(b"{}"), "application/geo+json")},
    )
    assert_problem(r, 404)


def test_cli_import_of_a_projected_geopackage(city_db_url, tmp_path, monkeypatch):
    gdf = _export(city_db_url, "safety").to_crs(4549)  # CGCS2000 GK, as a surveying office delivers it
    path = tmp_path / "safety.gpkg"
    gdf.to_file(path, driver="GPKG")
    before_version = _state(city_db_url, "safety")[0]
    monkeypatch.setenv("GRIDRISK_DATABASE_URL", city_db_url)
    result = CliRunner().invoke(cli_app, ["grids", "import", "safety", str(path)])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output
    assert _state(city_db_url, "safety")[0] == before_version + 1
    # Transformed back to lon/lat: the cells sit where they were (to well under a millimetre).
    again = _export(city_db_url, "safety")
    assert again["code"].tolist() == gdf["code"].tolist()
    assert shapely.hausdorff_distance(again.geometry.values[0], gdf.to_crs(4326).geometry.values[0]) < 1e-8


def test_cli_rejects_with_a_report_and_exit_code(city_db_url, tmp_path, monkeypatch):
    gdf = _export(city_db_url, "emergency")
    gdf.loc[0, "geometry"] = shapely.Polygon(
        [(118.80, 32.05), (118.81, 32.06), (118.81, 32.05), (118.80, 32.06)]
    )
    path = tmp_path / "emergency.geojson"
    gdf.to_file(path, driver="GeoJSON")
    monkeypatch.setenv("GRIDRISK_DATABASE_URL", city_db_url)
    result = CliRunner().invoke(cli_app, ["grids", "import", "emergency", str(path)])
    assert result.exit_code == 1
    assert "invalid_geometry" in result.output


def _zipped_shapefile(gdf: gpd.GeoDataFrame, folder, encoding: str, *, cpg: bool) -> bytes:
    """A zipped shapefile whose text is in ENCODING, without the .cpg unless CPG (as many are delivered)."""
    import zipfile

    import pyogrio

    pyogrio.write_dataframe(gdf, folder / "cells.shp", driver="ESRI Shapefile", encoding=encoding)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for part in sorted(folder.iterdir()):
            if cpg or part.suffix.lower() != ".cpg":
                archive.write(part, arcname=part.name)
    return buf.getvalue()


def test_a_gbk_shapefile_without_cpg_imports_with_its_chinese_names(
    city_client, city_db_url, city_keys, tmp_path
):
    """Not ÐþÎäÇø: the text is found to be GB18030, imported right, and the report says how it was read."""
    gdf = _export(city_db_url, "district")
    gdf["name"] = [f"{n}（GBK）" for n in gdf["name"]]
    data = _zipped_shapefile(gdf, tmp_path, "GBK", cpg=False)
    r = city_client.post(
        "/layers/district/import",
        headers=bearer(city_keys["admin"]),
        files={"file": ("districts.zip", io.BytesIO(data), "application/zip")},
    )
    assert r.status_code == 200, r.text
    report = r.json()["report"]
    assert report["summary"]["text_encoding"] == {"encoding": "GB18030", "how": "detected"}
    assert "encoding_detected" in {w["kind"] for w in report["warnings"]}
    with psycopg.connect(city_db_url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM cells WHERE layer = 'district' ORDER BY code")]
    assert names == list(gdf["name"]) and all("（GBK）" in n for n in names)
    # Text that is not what the form says is refused, and nothing changes.
    before = _state(city_db_url, "district")
    r = city_client.post(
        "/layers/district/import",
        headers=bearer(city_keys["admin"]),
        files={"file": ("districts.zip", io.BytesIO(data), "application/zip")},
        data={"encoding": "ascii"},
    )
    assert_problem(r, 422)
    assert "not valid ascii" in r.json()["detail"]
    assert _state(city_db_url, "district") == before


def test_a_dry_run_returns_the_full_report_and_writes_nothing(city_client, city_db_url, city_keys):
    gdf = _export(city_db_url, "comprehensive")
    before = _state(city_db_url, "comprehensive")
    with psycopg.connect(city_db_url) as conn:
        logged = conn.execute("SELECT count(*) FROM layer_imports").fetchone()[0]
    r = _upload(city_client, city_keys["admin"], "comprehensive", gdf, dry_run=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True and body["result"] is None and body["report"]["ok"] is True
    assert "nothing was written" in body["message"]
    metric = gdf.to_crs(4549)
    metric.loc[5, "geometry"] = metric.loc[5, "geometry"].buffer(150)
    r = _upload(city_client, city_keys["admin"], "comprehensive", metric.to_crs(4326), dry_run=True)
    assert_problem(r, 422)
    assert "overlap" in {e["kind"] for e in r.json()["report"]["errors"]}
    assert _state(city_db_url, "comprehensive") == before
    with psycopg.connect(city_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM layer_imports").fetchone()[0] == logged
