"""Reading delivered grid files and validating their cells (no database): formats, CRS, codes, topology."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from pyproj import Transformer
from shapely.affinity import translate
from shapely.geometry import GeometryCollection, LineString, Point, Polygon

from gridrisk.imports.grid_files import GridFileError, read_layer_file
from gridrisk.imports.grid_validation import Tolerances, validate_cells

TO_METRIC = Transformer.from_crs("EPSG:4326", "EPSG:4549", always_xy=True)
CENTRE = TO_METRIC.transform(118.78, 32.04)
SIZE = 500.0  # metres: a 10 x 10 grid of 500 m squares is the 5 km x 5 km test city
N = 10


def square(col: int, row: int, size: float = SIZE, n: int = N) -> Polygon:
    """Cell (col, row) of an n x n grid of size-metre squares centred on CENTRE, in EPSG:4549."""
    x0 = CENTRE[0] - n * size / 2 + col * size
    y0 = CENTRE[1] - n * size / 2 + row * size
    return shapely.box(x0, y0, x0 + size, y0 + size)


def metric_grid(n: int = N, size: float = SIZE) -> gpd.GeoDataFrame:
    """The grid in EPSG:4549 with code/name/population columns; feature k is cell (k % n, k // n)."""
    cells = [square(col, row, size, n) for row in range(n) for col in range(n)]
    return gpd.GeoDataFrame(
        {
            "code": [f"G{k:05d}" for k in range(len(cells))],
            "name": [f"Cell {k}" for k in range(len(cells))],
            "population": [1000 + k for k in range(len(cells))],
        },
        geometry=cells,
        crs="EPSG:4549",
    )


def wgs84(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.to_crs("EPSG:4326")


def city_of(n: int = N, size: float = SIZE) -> shapely.Geometry:
    """The city outline in lon/lat: the union of the full grid (so its edges carry the cell vertices)."""
    outline = shapely.union_all(metric_grid(n, size).geometry.values)
    return gpd.GeoSeries([outline], crs="EPSG:4549").to_crs("EPSG:4326").iloc[0]


def with_geometry(gdf: gpd.GeoDataFrame, index: int, geom: shapely.Geometry) -> gpd.GeoDataFrame:
    out = gdf.copy()
    out.loc[index, "geometry"] = geom
    return out


def kinds(items: list[dict]) -> list[str]:
    return [item["kind"] for item in items]


def as_metric_point(location: list[float]) -> Point:
    return Point(TO_METRIC.transform(*location))


# Cell 44 is (4, 4): interior, its east neighbour is feature 45.
INTERIOR = 44


@pytest.fixture
def grid() -> gpd.GeoDataFrame:
    return metric_grid()


@pytest.fixture(scope="module")
def city() -> shapely.Geometry:
    return city_of()


# ----------------------------------------------------------------------------------------- clean grid


def test_clean_grid_is_ok_with_multipolygons_and_metric_areas(grid, city):
    cleaned, report = validate_cells(wgs84(grid), city)

    assert report.ok
    assert report.errors == [] and report.warnings == [] and report.repaired == []
    assert report.feature_count == 100
    assert cleaned.crs.to_epsg() == 4326
    assert set(cleaned.geometry.geom_type) == {"MultiPolygon"}
    assert cleaned.geometry.is_valid.all()
    assert np.allclose(cleaned["area_m2"], 250_000, rtol=0.005)
    assert report.summary["cell_area_m2"] == pytest.approx(25_000_000, rel=0.005)
    assert report.summary["gap_area_m2"] == 0 and report.summary["overlap_area_m2"] == 0
    assert list(cleaned["code"]) == list(grid["code"])


# --------------------------------------------------------------------------------------------- formats


def write_geojson(gdf: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "grid.geojson"
    pyogrio.write_dataframe(wgs84(gdf), path, driver="GeoJSON")
    return path


def write_gpkg(gdf: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "grid.gpkg"
    pyogrio.write_dataframe(wgs84(gdf), path, layer="cells", driver="GPKG")
    return path


def write_gpkg_metric(gdf: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "grid_4549.gpkg"
    pyogrio.write_dataframe(gdf, path, layer="cells", driver="GPKG")
    return path


def write_zipped_shapefile(gdf: gpd.GeoDataFrame, folder: Path, *, with_prj: bool = True) -> Path:
    shp_dir = folder / "shp"
    shp_dir.mkdir()
    pyogrio.write_dataframe(gdf, shp_dir / "cells.shp", driver="ESRI Shapefile")
    path = folder / "grid.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for part in sorted(shp_dir.iterdir()):
            if with_prj or part.suffix != ".prj":
                archive.write(part, arcname=part.name)
    return path


def write_parquet(gdf: gpd.GeoDataFrame, folder: Path) -> Path:
    path = folder / "grid.parquet"
    wgs84(gdf).to_parquet(path)
    return path


FORMATS = {
    "geojson": (write_geojson, "EPSG:4326"),
    "gpkg": (write_gpkg, "EPSG:4326"),
    "zipped_shapefile": (lambda gdf, folder: write_zipped_shapefile(wgs84(gdf), folder), "EPSG:4326"),
    "geoparquet": (write_parquet, "EPSG:4326"),
    "gpkg_in_epsg_4549": (write_gpkg_metric, "EPSG:4549"),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_to_the_same_cells(fmt, grid, city, tmp_path):
    writer, source_crs = FORMATS[fmt]
    result = read_layer_file(writer(grid, tmp_path))

    assert result.source_crs == source_crs
    assert result.feature_count == 100
    assert list(result.gdf.columns) == [
        "row",
        "code",
        "name",
        "population",
        "district_code",
        "name_en",
        "geometry",
    ]
    assert list(result.gdf["code"]) == list(grid["code"])
    assert list(result.gdf["row"]) == list(range(1, 101))
    assert list(result.gdf["population"]) == list(grid["population"])
    assert result.gdf.crs.to_epsg() == 4326

    cleaned, report = validate_cells(result.gdf, city)
    assert report.ok and report.source_crs == source_crs
    expected = shapely.normalize(shapely.multipolygons(wgs84(grid).geometry.values, indices=np.arange(100)))
    got = shapely.normalize(cleaned.geometry.values)
    # Shapefiles reverse ring orientation; normalising makes the comparison about coordinates only.
    assert shapely.equals_exact(got, expected, tolerance=1e-7).all()


def test_codes_are_text_and_optional_columns_are_recognised(tmp_path):
    cells = [square(0, 0), square(1, 0), square(2, 0)]
    gdf = gpd.GeoDataFrame(
        {
            "grid_code": [101.0, 102.0, 103.5],
            "NAME": ["  East Gate ", None, "West"],
            "pop": [10.0, None, 30.0],
            "district": [320102, 320102, 320104],
            "name_en": ["East", "", "West"],
        },
        geometry=cells,
        crs="EPSG:4549",
    )
    path = tmp_path / "cells.gpkg"
    pyogrio.write_dataframe(gdf, path, driver="GPKG")

    result = read_layer_file(path)
    out = result.gdf
    assert list(out["code"]) == ["101", "102", "103.5"]
    assert list(out["name"]) == ["East Gate", "102", "West"]  # a missing name falls back to the code
    assert list(out["population"]) == [10, None, 30]
    assert list(out["district_code"]) == ["320102", "320102", "320104"]
    assert list(out["name_en"]) == ["East", None, "West"]
    assert result.columns == {
        "code": "grid_code",
        "name": "NAME",
        "population": "pop",
        "district_code": "district",
        "name_en": "name_en",
    }


def test_explicit_fields_are_used(grid, tmp_path):
    gdf = grid.rename(columns={"code": "BH", "name": "MC"})
    gdf["code"] = "ignored"
    path = write_gpkg(gdf, tmp_path)

    result = read_layer_file(path, code_field="BH", name_field="MC")
    assert list(result.gdf["code"]) == list(grid["code"])
    assert list(result.gdf["name"]) == list(grid["name"])


def test_missing_explicit_code_field_names_the_field_and_the_columns(grid, tmp_path):
    path = write_geojson(grid, tmp_path)

    with pytest.raises(GridFileError, match="'cell_no'") as info:
        read_layer_file(path, code_field="cell_no")
    assert "code, name, population" in str(info.value)


def test_file_without_any_code_column_is_refused(grid, tmp_path):
    path = write_geojson(grid.drop(columns=["code"]), tmp_path)

    with pytest.raises(GridFileError, match="no code column"):
        read_layer_file(path)


def test_unknown_extension_is_refused_with_the_accepted_formats(tmp_path):
    path = tmp_path / "grid.kml"
    path.write_text("<kml/>")

    with pytest.raises(GridFileError, match=r"unsupported file type '\.kml'") as info:
        read_layer_file(path)
    assert "GeoPackage" in str(info.value) and "Shapefile" in str(info.value)


def test_damaged_file_is_a_grid_file_error(tmp_path):
    path = tmp_path / "grid.gpkg"
    path.write_bytes(b"this is not a geopackage")

    with pytest.raises(GridFileError, match="could not be read as GeoPackage"):
        read_layer_file(path)


def test_zip_without_a_shapefile_is_refused(tmp_path):
    path = tmp_path / "grid.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "no shapefile here")

    with pytest.raises(GridFileError, match="no .shp file"):
        read_layer_file(path)


def test_shapefile_without_prj_is_taken_as_lonlat_and_warned_about(grid, city, tmp_path):
    result = read_layer_file(write_zipped_shapefile(wgs84(grid), tmp_path, with_prj=False))

    assert result.crs_assumed and result.source_crs == "EPSG:4326"
    _, report = validate_cells(result.gdf, city)
    assert report.ok
    assert kinds(report.warnings) == ["crs_assumed"]


def test_projected_coordinates_without_a_crs_are_refused(grid, tmp_path):
    with pytest.raises(GridFileError, match="not longitude/latitude"):
        read_layer_file(write_zipped_shapefile(grid, tmp_path, with_prj=False))


# ------------------------------------------------------------------------------------ per-row errors


def bow_tie(col: int, row: int) -> Polygon:
    """The square's corners in crossing order: a self-intersecting 'bow-tie' in EPSG:4549."""
    x0, y0, x1, y1 = square(col, row).bounds
    return Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])


def test_self_intersecting_cell_is_an_invalid_geometry_error_with_its_location(grid):
    gdf = wgs84(with_geometry(grid, INTERIOR, bow_tie(4, 4)))

    cleaned, report = validate_cells(gdf, None)

    assert not report.ok
    (error,) = [e for e in report.errors if e["kind"] == "invalid_geometry"]
    assert error["row"] == INTERIOR + 1 and error["code"] == "G00044"
    assert error["reason"] == "Self-intersection"
    # The bow-tie crosses itself at the square's centre.
    assert as_metric_point(error["location"]).distance(square(4, 4).centroid) < 0.01
    assert cleaned.geometry.iloc[INTERIOR] is None


def test_self_intersecting_cell_is_repaired_on_request(grid):
    gdf = wgs84(with_geometry(grid, INTERIOR, bow_tie(4, 4)))

    cleaned, report = validate_cells(gdf, None, repair=True)

    assert report.ok
    assert kinds(report.warnings) == ["no_city_outline"]
    (item,) = report.repaired
    assert item["kind"] == "invalid_geometry" and item["row"] == INTERIOR + 1
    assert item["reason"] == "Self-intersection"
    geom = cleaned.geometry.iloc[INTERIOR]
    assert geom.geom_type == "MultiPolygon" and geom.is_valid
    assert cleaned["area_m2"].iloc[INTERIOR] == pytest.approx(125_000, rel=0.005)  # the two triangles


def test_geometry_collection_is_an_error_unless_repaired(grid, city):
    polygon = wgs84(grid).geometry.iloc[INTERIOR]
    mixed = GeometryCollection([polygon, LineString([(118.0, 32.0), (118.1, 32.1)])])
    gdf = with_geometry(wgs84(grid), INTERIOR, mixed)

    _, report = validate_cells(gdf, city)
    assert not report.ok
    assert kinds(report.errors) == ["non_polygon"] and report.errors[0]["row"] == INTERIOR + 1

    cleaned, repaired = validate_cells(gdf, city, repair=True)
    assert repaired.ok and kinds(repaired.repaired) == ["non_polygon"]
    assert cleaned.geometry.iloc[INTERIOR].equals(shapely.MultiPolygon([polygon]))


def read_back(gdf: gpd.GeoDataFrame, folder: Path) -> gpd.GeoDataFrame:
    return read_layer_file(write_geojson(gdf, folder)).gdf


def test_duplicate_code_names_every_row(grid, city, tmp_path):
    grid.loc[[3, 70], "code"] = "G00007"

    _, report = validate_cells(read_back(grid, tmp_path), city)

    assert not report.ok
    (error,) = report.errors
    assert error["kind"] == "duplicate_code" and error["code"] == "G00007"
    assert error["rows"] == [4, 8, 71]
    assert "4, 8, 71" in error["message"]


def test_missing_code_names_the_row(grid, city, tmp_path):
    grid["code"] = grid["code"].astype(object)
    grid.loc[12, "code"] = None
    grid.loc[13, "code"] = "   "

    _, report = validate_cells(read_back(grid, tmp_path), city)

    assert not report.ok
    assert kinds(report.errors) == ["missing_code", "missing_code"]
    assert [e["row"] for e in report.errors] == [13, 14]


def test_line_feature_is_a_non_polygon_error(grid, city, tmp_path):
    x0, y0, x1, y1 = square(4, 4).bounds
    gdf = with_geometry(grid, INTERIOR, LineString([(x0, y0), (x1, y1)]))

    _, report = validate_cells(read_back(gdf, tmp_path), city)

    assert not report.ok
    non_polygon = [e for e in report.errors if e["kind"] == "non_polygon"]
    assert [e["row"] for e in non_polygon] == [INTERIOR + 1]
    assert "LineString" in non_polygon[0]["message"]
    # The line's cell is missing from the coverage, so that square is also a gap.
    assert kinds(report.errors) == ["non_polygon", "gap"]


def test_empty_geometry_is_an_error(grid, city, tmp_path):
    gdf = with_geometry(grid, 0, Polygon())

    cleaned, report = validate_cells(read_back(gdf, tmp_path), city)

    assert not report.ok
    empty = [e for e in report.errors if e["kind"] == "empty_geometry"]
    assert [e["row"] for e in empty] == [1]
    assert cleaned.geometry.iloc[0] is None and np.isnan(cleaned["area_m2"].iloc[0])


# ------------------------------------------------------------------------------------------ overlaps


def widened_east(metres: float) -> Polygon:
    x0, y0, x1, y1 = square(4, 4).bounds
    return shapely.box(x0, y0, x1 + metres, y1)


def test_big_overlap_is_an_error_with_the_pair_and_its_area(grid, city):
    gdf = wgs84(with_geometry(grid, INTERIOR, widened_east(100)))

    _, report = validate_cells(gdf, city)

    assert not report.ok
    (error,) = report.errors
    assert error["kind"] == "overlap" and error["severity"] == "error"
    assert error["codes"] == ["G00044", "G00045"] and error["rows"] == [45, 46]
    assert error["area_m2"] == pytest.approx(100 * 500, rel=0.005)
    assert error["share"] == pytest.approx(0.2, rel=0.01)
    x0, y0, _, y1 = square(5, 4).bounds  # the overlap is the western 100 m of the east neighbour
    assert shapely.box(x0, y0, x0 + 100, y1).contains(as_metric_point(error["location"]))
    assert report.summary["overlap_area_m2"] == pytest.approx(50_000, rel=0.005)


def test_tiny_overlap_is_only_a_warning(grid, city):
    gdf = wgs84(with_geometry(grid, INTERIOR, widened_east(0.2)))

    _, report = validate_cells(gdf, city)

    assert report.ok
    (warning,) = report.warnings
    assert warning["kind"] == "overlap" and warning["severity"] == "warning"
    assert warning["codes"] == ["G00044", "G00045"]
    assert warning["area_m2"] == pytest.approx(0.2 * 500, rel=0.02)


def test_overlap_below_the_noise_threshold_is_ignored(grid, city):
    gdf = wgs84(with_geometry(grid, INTERIOR, widened_east(0.001)))  # 0.5 m²

    _, report = validate_cells(gdf, city)

    assert report.ok and report.warnings == []


# ---------------------------------------------------------------------------------------------- gaps


def test_removed_cell_is_a_gap_error_located_in_the_hole(grid, city):
    gdf = wgs84(grid.drop(index=INTERIOR))

    _, report = validate_cells(gdf, city)

    assert not report.ok
    (error,) = report.errors
    assert error["kind"] == "gap" and error["severity"] == "error"
    assert error["area_m2"] == pytest.approx(250_000, rel=0.005)
    assert square(4, 4).contains(as_metric_point(error["location"]))
    assert report.summary["gap_area_m2"] == pytest.approx(250_000, rel=0.005)


def test_tiny_gap_is_only_a_warning(grid, city):
    x0, y0, x1, y1 = square(4, 4).bounds
    gdf = wgs84(with_geometry(grid, INTERIOR, shapely.box(x0, y0, x1 - 0.2, y1)))

    _, report = validate_cells(gdf, city)

    assert report.ok
    (warning,) = report.warnings
    assert warning["kind"] == "gap" and warning["area_m2"] == pytest.approx(100, rel=0.02)


def test_unlimited_gap_warning_threshold_downgrades_partial_grids(grid, city):
    gdf = wgs84(grid.iloc[:50])  # the southern half of the city only

    _, strict = validate_cells(gdf, city)
    _, lenient = validate_cells(gdf, city, tol=Tolerances(gap_warn_m2=float("inf")))

    assert not strict.ok and kinds(strict.errors) == ["gap"]
    assert lenient.ok and kinds(lenient.warnings) == ["gap"]
    assert lenient.warnings[0]["area_m2"] == pytest.approx(12_500_000, rel=0.005)


# ------------------------------------------------------------------------------------- outside city


def test_cell_far_outside_the_city_is_an_error(grid, city):
    far = translate(square(9, 9), xoff=20_000)
    extra = gpd.GeoDataFrame({"code": ["FAR"], "name": ["Far"], "population": [0]}, geometry=[far], crs=4549)
    gdf = wgs84(pd.concat([grid, extra], ignore_index=True))

    _, report = validate_cells(gdf, city)

    assert not report.ok
    (error,) = report.errors
    assert error["kind"] == "outside_city" and error["row"] == 101 and error["code"] == "FAR"
    assert "lies outside the city" in error["message"]
    assert far.contains(as_metric_point(error["location"]))


def test_cell_slightly_beyond_the_boundary_is_a_warning(grid, city):
    x0, y0, x1, y1 = square(9, 4).bounds  # on the eastern edge of the city
    gdf = wgs84(with_geometry(grid, 49, shapely.box(x0, y0, x1 + 2, y1)))

    _, report = validate_cells(gdf, city)

    assert report.ok
    (warning,) = report.warnings
    assert warning["kind"] == "outside_city" and warning["row"] == 50
    assert warning["area_m2"] == pytest.approx(1000, rel=0.01)


def test_without_a_city_outline_coverage_checks_are_skipped(grid):
    _, report = validate_cells(wgs84(grid.drop(index=INTERIOR)), None)

    assert report.ok
    (warning,) = report.warnings
    assert warning["kind"] == "no_city_outline"
    assert "district layer is not loaded" in warning["message"]


# -------------------------------------------------------------------------------------------- report


def test_long_lists_are_truncated_but_counted(grid, city):
    grid["code"] = None
    tol = Tolerances(max_items_per_kind=5)

    _, report = validate_cells(wgs84(grid), city, tol=tol)

    assert len(report.errors) == 5
    assert report.summary["counts"]["missing_code"] == {"error": 100, "warning": 0}
    assert report.summary["error_count"] == 100
    assert report.summary["left_out"]["errors"] == {"missing_code": 95}


def test_report_dict_is_json_with_rounded_numbers(grid, city):
    gdf = wgs84(with_geometry(grid, INTERIOR, widened_east(100)))

    _, report = validate_cells(gdf, city)
    data = json.loads(json.dumps(report.to_dict()))

    assert set(data) == {"ok", "feature_count", "source_crs", "errors", "warnings", "repaired", "summary"}
    error = data["errors"][0]
    assert set(error) >= {"kind", "severity", "message", "row", "code", "location", "area_m2"}
    assert error["area_m2"] == round(error["area_m2"], 2)
    assert all(value == round(value, 7) for value in error["location"])
    assert data["summary"]["cell_area_m2"] == round(data["summary"]["cell_area_m2"], 2)


# ---------------------------------------------------------------------------------------- real scale


@pytest.mark.slow
def test_validation_at_real_scale_of_22500_cells():
    n, size = 150, 100.0
    gdf = wgs84(metric_grid(n, size))
    gdf.loc[0, "geometry"] = None  # one problem, so the issue path runs at scale too
    city = city_of(n, size)

    started = time.perf_counter()
    cleaned, report = validate_cells(gdf, city)
    seconds = time.perf_counter() - started
    print(f"validated {len(gdf)} cells in {seconds:.2f} s")

    assert report.feature_count == 22_500
    assert kinds(report.errors) == ["empty_geometry", "gap"]
    assert report.errors[1]["area_m2"] == pytest.approx(10_000, rel=0.005)
    assert report.summary["cell_area_m2"] == pytest.approx(225_000_000 - 10_000, rel=0.001)
    assert cleaned.geometry.is_valid.sum() == 22_499


# ------------------------------------------------------------------------------- shapefile text encoding


def write_encoded_shapefile(gdf: gpd.GeoDataFrame, folder: Path, encoding: str, *, cpg: bool) -> Path:
    """A zipped shapefile whose .dbf text is in ENCODING, with or without the .cpg that says so."""
    shp_dir = folder / f"shp-{encoding}-{cpg}"
    shp_dir.mkdir()
    pyogrio.write_dataframe(gdf, shp_dir / "cells.shp", driver="ESRI Shapefile", encoding=encoding)
    path = folder / f"grid-{encoding}-{cpg}.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for part in sorted(shp_dir.iterdir()):
            if cpg or part.suffix.lower() != ".cpg":
                archive.write(part, arcname=part.name)
    return path


def chinese_names(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    out = wgs84(gdf).copy()
    out["name"] = [f"玄武区第{i}网格" for i in range(len(out))]
    return out


@pytest.mark.parametrize(
    "encoding,cpg,read_as,how",
    [
        ("GBK", False, "GB18030", "detected"),  # the mojibake case: GDAL alone reads ÐþÎäÇø
        ("GBK", True, "GBK", "cpg"),
        ("UTF-8", False, "UTF-8", "detected"),
    ],
)
def test_shapefile_text_is_read_in_its_encoding(grid, city, tmp_path, encoding, cpg, read_as, how):
    source = chinese_names(grid)
    result = read_layer_file(write_encoded_shapefile(source, tmp_path, encoding, cpg=cpg))
    assert list(result.gdf["name"]) == list(source["name"])
    assert result.text_encoding == {"encoding": read_as, "how": how}
    _, report = validate_cells(result.gdf, city)
    assert report.summary["text_encoding"] == {"encoding": read_as, "how": how}
    # Only a guess that is not UTF-8 is worth a warning.
    assert ("encoding_detected" in kinds(report.warnings)) == (read_as == "GB18030")


def test_text_in_neither_utf8_nor_gb18030_is_refused_unless_its_encoding_is_given(grid, tmp_path):
    source = wgs84(grid).copy()
    source["name"] = ["ÿþý" for _ in range(len(source))]  # Latin-1 bytes FF FE FD: not UTF-8, not GB18030
    path = write_encoded_shapefile(source, tmp_path, "ISO-8859-1", cpg=False)
    with pytest.raises(GridFileError, match="neither UTF-8 nor GB18030.*--encoding"):
        read_layer_file(path)
    given = read_layer_file(path, encoding="latin-1")
    assert set(given.gdf["name"]) == {"ÿþý"} and given.text_encoding == {
        "encoding": "latin-1",
        "how": "given",
    }
    with pytest.raises(GridFileError, match="unknown text encoding"):
        read_layer_file(path, encoding="klingon")
