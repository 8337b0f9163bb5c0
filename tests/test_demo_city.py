"""Tests for the synthetic demo-city grids: counts, tiling, populations, determinism, density."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from gridrisk.demo.city import (
    DEFAULT_COUNTS,
    METRIC_CRS,
    allocate_cells,
    build_demo_grids,
    largest_remainder,
    load_districts_file,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "nanjing-districts.geojson"
SMALL_CODES = ["320102", "320115"]  # dense Xuanwu, large and mostly rural Jiangning
SMALL_COUNTS = {"comprehensive": 300, "emergency": 40, "safety": 500}
PREFIXES = {"comprehensive": "CMP", "emergency": "EMG", "safety": "SAF"}
AREA_TOLERANCE_M2 = 1e-3  # floating-point noise allowed per cell, in m²


@pytest.fixture(scope="module")
def all_districts() -> gpd.GeoDataFrame:
    return load_districts_file(DATA)


@pytest.fixture(scope="module")
def districts(all_districts) -> gpd.GeoDataFrame:
    return all_districts[all_districts["code"].isin(SMALL_CODES)].reset_index(drop=True)


@pytest.fixture(scope="module")
def grids(districts) -> dict[str, gpd.GeoDataFrame]:
    return build_demo_grids(districts, seed=42, counts=SMALL_COUNTS)


@pytest.fixture(scope="module")
def metric_grids(grids) -> dict[str, gpd.GeoDataFrame]:
    return {layer: frame.to_crs(METRIC_CRS) for layer, frame in grids.items()}


@pytest.fixture(scope="module")
def metric_districts(districts) -> dict[str, shapely.Geometry]:
    projected = districts.to_crs(METRIC_CRS)
    return dict(zip(projected["code"], projected.geometry, strict=True))


def layer_cases():
    return pytest.mark.parametrize("layer", list(SMALL_COUNTS))


def mean_cell_area_km2(frame: gpd.GeoDataFrame, district_code: str) -> float:
    cells = frame[frame["district_code"] == district_code].to_crs(METRIC_CRS)
    return float(cells.area.mean() / 1e6)


@layer_cases()
def test_exact_counts(grids, layer):
    assert len(grids[layer]) == SMALL_COUNTS[layer]
    per_district = grids[layer]["district_code"].value_counts()
    assert set(per_district.index) == set(SMALL_CODES)
    assert (per_district >= 1).all()


@layer_cases()
def test_columns_crs_and_codes(grids, layer):
    frame = grids[layer]
    expected = ["code", "name", "district_code", "population"]
    if layer == "comprehensive":
        expected += ["worker_name", "worker_phone"]
    assert list(frame.columns) == expected + ["geometry"]
    assert frame.crs.to_epsg() == 4326
    assert frame["code"].is_unique
    pattern = re.compile(rf"^{PREFIXES[layer]}-(\d{{6}})-(\d{{4}})$")
    for code, district_code, name in frame[["code", "district_code", "name"]].itertuples(index=False):
        match = pattern.match(code)
        assert match and match.group(1) == district_code
        assert name.endswith(match.group(2))


def test_workers_are_plausible(grids):
    frame = grids["comprehensive"]
    assert frame["worker_name"].str.fullmatch(r"[\u4e00-\u9fff]{2,3}").all()
    assert frame["worker_phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    assert frame["worker_phone"].is_unique
    for layer in ("emergency", "safety"):
        assert "worker_name" not in grids[layer].columns


@layer_cases()
def test_cells_are_valid_nonempty_multipolygons(grids, metric_grids, layer):
    for frame in (grids[layer], metric_grids[layer]):
        assert (frame.geom_type == "MultiPolygon").all()
        assert frame.is_valid.all()
        assert not frame.is_empty.any()
        assert (shapely.area(frame.geometry.values) > 0).all()


@layer_cases()
def test_cells_lie_within_their_district(metric_grids, metric_districts, layer):
    frame = metric_grids[layer]
    shapes = np.array([metric_districts[code] for code in frame["district_code"]], dtype=object)
    outside = shapely.area(shapely.difference(frame.geometry.values, shapes))
    assert outside.max() < AREA_TOLERANCE_M2


@layer_cases()
def test_cells_do_not_overlap(metric_grids, layer):
    cells = metric_grids[layer].geometry.values
    left, right = shapely.STRtree(cells).query(cells, predicate="intersects")
    pairs = left < right
    assert pairs.any(), "neighbouring cells should touch"
    overlap = shapely.area(shapely.intersection(cells[left[pairs]], cells[right[pairs]]))
    assert overlap.max() < AREA_TOLERANCE_M2
    union_area = shapely.union_all(cells).area
    assert shapely.area(cells).sum() == pytest.approx(union_area, rel=1e-9)


@layer_cases()
def test_cells_tile_each_district_without_gaps(metric_grids, metric_districts, layer):
    frame = metric_grids[layer]
    for code, shape in metric_districts.items():
        union = shapely.union_all(frame[frame["district_code"] == code].geometry.values)
        assert abs(union.area - shape.area) / shape.area < 1e-6
        assert shapely.symmetric_difference(union, shape).area / shape.area < 1e-6


@layer_cases()
def test_populations_sum_to_district_totals(grids, districts, layer):
    frame = grids[layer]
    assert frame["population"].dtype.kind == "i"
    assert (frame["population"] >= 0).all()
    sums = frame.groupby("district_code")["population"].sum()
    expected = districts.set_index("code")["population"]
    assert sums.sort_index().tolist() == expected.loc[sums.sort_index().index].tolist()


def test_same_seed_is_bit_identical(districts, grids):
    again = build_demo_grids(districts, seed=42, counts=SMALL_COUNTS)
    for layer, frame in grids.items():
        other = again[layer]
        assert frame.drop(columns="geometry").equals(other.drop(columns="geometry"))
        assert shapely.to_wkb(frame.geometry.values).tolist() == (
            shapely.to_wkb(other.geometry.values).tolist()
        )


def test_other_seed_differs(districts, grids):
    other = build_demo_grids(districts, seed=7, counts=SMALL_COUNTS)
    for layer, frame in grids.items():
        assert len(other[layer]) == len(frame)
        assert not shapely.equals_exact(frame.geometry.values, other[layer].geometry.values).all()
    assert not grids["comprehensive"]["worker_phone"].equals(other["comprehensive"]["worker_phone"])


@layer_cases()
def test_cells_are_denser_in_the_core(grids, layer):
    core = mean_cell_area_km2(grids[layer], "320102")
    rural = mean_cell_area_km2(grids[layer], "320115")
    assert rural > 3 * core


def test_density_peaks_inside_a_district(metric_grids):
    """Within Jiangning, cells near Dongshan are far smaller than in the rural south."""
    cells = metric_grids["safety"]
    cells = cells[cells["district_code"] == "320115"]
    dongshan = gpd.GeoSeries.from_xy([118.84], [31.95], crs=4326).to_crs(METRIC_CRS).iloc[0]
    distance = cells.centroid.distance(dongshan)
    near = cells.area[distance < 5000].mean()
    far = cells.area[distance > 25000].mean()
    assert far > 3 * near


def test_progress_is_reported_per_layer(districts):
    calls: list[tuple[str, int, int]] = []
    build_demo_grids(districts, counts=SMALL_COUNTS, progress=lambda *a: calls.append(a))
    for layer, total in SMALL_COUNTS.items():
        done = [d for name, d, t in calls if name == layer and t == total]
        assert len(done) == len(SMALL_CODES)
        assert done == sorted(done) and done[-1] == total


def test_largest_remainder_is_exact():
    shares = largest_remainder(np.array([1.0, 1.0, 1.0]), 10)
    assert shares.sum() == 10 and sorted(shares.tolist()) == [3, 3, 4]
    shares = largest_remainder(np.array([1000.0, 1.0, 0.0]), 7, minimum=1)
    assert shares.tolist() == [5, 1, 1]
    weights = np.random.default_rng(0).random(50)
    assert largest_remainder(weights, 12345).sum() == 12345
    with pytest.raises(ValueError):
        largest_remainder(np.ones(5), 3, minimum=1)


def test_allocation_blends_population_and_area():
    counts = allocate_cells(np.array([900, 100]), np.array([1.0, 9.0]), 100)
    # 0.7 * pop share + 0.3 * area share: 0.7*0.9 + 0.3*0.1 = 0.66 of the cells.
    assert counts.sum() == 100 and counts[0] == 66


def test_rejects_bad_input(districts):
    with pytest.raises(ValueError, match="unknown layers"):
        build_demo_grids(districts, counts={"bogus": 10})
    with pytest.raises(ValueError, match="every district"):
        build_demo_grids(districts, counts={"emergency": 1})
    with pytest.raises(ValueError, match="lack columns"):
        build_demo_grids(districts.drop(columns="population"), counts={"emergency": 10})


@pytest.mark.slow
def test_full_build_real_counts(all_districts):
    grids = build_demo_grids(all_districts)
    assert {layer: len(frame) for layer, frame in grids.items()} == DEFAULT_COUNTS
    for layer, frame in grids.items():
        assert frame["code"].is_unique
        assert frame["district_code"].nunique() == len(all_districts)
        assert frame["population"].sum() == all_districts["population"].sum()
        core = [mean_cell_area_km2(frame, code) for code in ("320102", "320104", "320106")]
        rural = [mean_cell_area_km2(frame, code) for code in ("320116", "320118")]
        assert min(rural) > 3 * max(core), (layer, core, rural)
