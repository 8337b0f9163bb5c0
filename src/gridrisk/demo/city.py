"""Build a plausible demo city: Nanjing's three grid layers as seeded Voronoi tilings.

Real grid boundaries are not public, so each layer is synthesised per district: seed points
are drawn with a density that peaks at the urban centres, their Voronoi diagram is clipped to
the district, and the district population is spread over the cells. Every cell therefore lies
in exactly one district, and each layer tiles every district without gaps or overlaps.
All geometry work happens in a metric CRS; results are returned in EPSG:4326.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely.geometry.base import BaseGeometry

from gridrisk.geometry.metric_crs import metric_crs_for

# The demo is Nanjing: the metric CRS of its centre (CGCS2000 3-degree Gauss-Kruger CM 120E).
METRIC_CRS = metric_crs_for(118.8, 32.05).srs
OUTPUT_CRS = "EPSG:4326"
DEFAULT_COUNTS: dict[str, int] = {"comprehensive": 12000, "emergency": 1780, "safety": 22000}
POPULATION_SHARE_WEIGHT = 0.7  # cells per district: 70 % population share, 30 % area share
MAX_TESSELLATION_ATTEMPTS = 5

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class LayerSpec:
    """How one grid layer is labelled, and which random stream it draws from."""

    prefix: str
    label: str
    stream: int


LAYERS: dict[str, LayerSpec] = {
    "comprehensive": LayerSpec("CMP", "综合网格", 1),
    "emergency": LayerSpec("EMG", "应急网格", 2),
    "safety": LayerSpec("SAF", "安全网格", 3),
}


@dataclass(frozen=True)
class UrbanCentre:
    """A peak of the settlement density: weight at its centre, decaying over `scale_m` metres."""

    name: str
    lon: float
    lat: float
    weight: float
    scale_m: float


URBAN_CENTRES: tuple[UrbanCentre, ...] = (
    UrbanCentre("新街口", 118.78, 32.04, 1.0, 6000.0),
    UrbanCentre("江宁东山", 118.84, 31.95, 0.6, 4000.0),
    UrbanCentre("浦口", 118.63, 32.06, 0.5, 4000.0),
    UrbanCentre("六合雄州", 118.83, 32.34, 0.4, 3000.0),
    UrbanCentre("溧水永阳", 119.02, 31.65, 0.4, 3000.0),
    UrbanCentre("高淳淳溪", 118.88, 31.33, 0.4, 3000.0),
)
DENSITY_FLOOR = 0.03  # countryside density, relative to the Xinjiekou peak

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝"
)
GIVEN_NAME_CHARS = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力鹏飞斌宇浩凯健俊帆帅旭宁"
    "龙林欣佳雪琳晨婷倩颖露瑶怡博志海波峰春燕晓东"
)
MOBILE_PREFIXES = (
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "177 180 181 182 183 185 186 187 188 189 199"
).split()


class DensityField:
    """Relative settlement density in the metric CRS: exponential peaks at urban centres."""

    def __init__(self, centres: Sequence[UrbanCentre], floor: float = DENSITY_FLOOR) -> None:
        to_metric = Transformer.from_crs(OUTPUT_CRS, METRIC_CRS, always_xy=True)
        lon = np.array([c.lon for c in centres])
        lat = np.array([c.lat for c in centres])
        self.x, self.y = to_metric.transform(lon, lat)
        self.weight = np.array([c.weight for c in centres])
        self.scale = np.array([c.scale_m for c in centres])
        self.floor = floor

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Density at points (x, y) in metres; always >= the floor, so never zero."""
        dist = np.hypot(x[:, None] - self.x, y[:, None] - self.y)
        return self.floor + (self.weight * np.exp(-dist / self.scale)).sum(axis=1)

    def upper_bound(self, area: BaseGeometry) -> float:
        """An upper bound of the density over `area`, for rejection sampling."""
        # Each term decays with distance, so its maximum over the area is reached at the
        # area's point nearest to the centre; summing the per-term maxima bounds the sum.
        dist = shapely.distance(shapely.points(self.x, self.y), area)
        return float(self.floor + (self.weight * np.exp(-dist / self.scale)).sum())


def build_demo_grids(
    districts: gpd.GeoDataFrame,
    seed: int = 42,
    counts: dict[str, int] | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Build the demo grid layers for `districts` (code, name, population, geometry).

    Returns one EPSG:4326 GeoDataFrame per layer with columns code, name, district_code,
    population and a MultiPolygon geometry; the comprehensive layer also has worker_name
    and worker_phone. The output depends only on the input and `seed`.
    """
    counts = dict(DEFAULT_COUNTS if counts is None else counts)
    _check_inputs(districts, counts)
    metric = districts.to_crs(METRIC_CRS).reset_index(drop=True)
    shapes = [_district_shape(geom) for geom in metric.geometry]
    density = DensityField(URBAN_CENTRES)
    return {
        layer: _build_layer(layer, total, metric, shapes, density, seed, progress)
        for layer, total in counts.items()
    }


def load_districts_file(path: str | Path) -> gpd.GeoDataFrame:
    """Read the reference districts GeoJSON into the columns build_demo_grids expects."""
    frame = gpd.read_file(path).rename(columns={"population_approx": "population"})
    return frame[["code", "name", "population", "geometry"]]


def allocate_cells(populations: np.ndarray, areas: np.ndarray, total: int, minimum: int = 1) -> np.ndarray:
    """Split a layer's cell total over districts by a blend of population and area shares."""
    populations = np.asarray(populations, dtype=float)
    areas = np.asarray(areas, dtype=float)
    pop_share = populations / populations.sum() if populations.sum() > 0 else 0.0
    weights = POPULATION_SHARE_WEIGHT * pop_share + (1 - POPULATION_SHARE_WEIGHT) * (areas / areas.sum())
    return largest_remainder(weights, total, minimum)


def largest_remainder(weights: np.ndarray, total: int, minimum: int = 0) -> np.ndarray:
    """Integers proportional to `weights`, each >= `minimum`, summing exactly to `total`."""
    weights = np.asarray(weights, dtype=float)
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError(f"cannot give {len(weights)} items at least {minimum} out of {total}")
    if weights.sum() <= 0:
        weights = np.ones_like(weights)
    quotas = spare * weights / weights.sum()
    shares = np.floor(quotas).astype(np.int64)
    # Hand the leftover units to the largest fractional parts (stable sort: deterministic ties).
    leftover = int(spare - shares.sum())
    order = np.argsort(-(quotas - shares), kind="stable")
    shares[order[:leftover]] += 1
    return shares + minimum


def _check_inputs(districts: gpd.GeoDataFrame, counts: dict[str, int]) -> None:
    """Fail early, with a clear message, on inputs the build cannot honour."""
    missing = {"code", "name", "population"} - set(districts.columns)
    if missing:
        raise ValueError(f"districts lack columns: {sorted(missing)}")
    if districts.crs is None:
        raise ValueError("districts have no CRS; expected EPSG:4326")
    if districts["code"].astype(str).duplicated().any():
        raise ValueError("district codes must be unique")
    unknown = set(counts) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown layers: {sorted(unknown)}; known: {sorted(LAYERS)}")
    for layer, total in counts.items():
        if total < len(districts):
            raise ValueError(f"{layer}: {total} cells cannot give every district one")


def _district_shape(geom: BaseGeometry) -> BaseGeometry:
    """The district polygon, repaired if needed and prepared for fast point-in-polygon tests."""
    if not geom.is_valid:
        geom = _polygonal(np.array([shapely.make_valid(geom)], dtype=object))[0]
    shapely.prepare(geom)
    return geom


def _build_layer(
    layer: str,
    total: int,
    districts: gpd.GeoDataFrame,
    shapes: list[BaseGeometry],
    density: DensityField,
    seed: int,
    progress: ProgressFn | None,
) -> gpd.GeoDataFrame:
    """Tile every district for one layer and assemble the layer's GeoDataFrame."""
    spec = LAYERS[layer]
    areas = shapely.area(np.array(shapes, dtype=object))
    per_district = allocate_cells(districts["population"].to_numpy(), areas, total)
    frames, done = [], 0
    for row, shape, n_cells in zip(districts.itertuples(), shapes, per_district, strict=True):
        rng = _rng(seed, spec.stream, str(row.code))
        cells = _tessellate(shape, int(n_cells), density, rng)
        populations = _apportion_population(cells, int(row.population), density)
        frames.append(_district_frame(spec, str(row.code), str(row.name), cells, populations))
        done += len(cells)
        if progress is not None:
            progress(layer, done, total)
    frame = pd.concat(frames, ignore_index=True)
    if layer == "comprehensive":
        frame = _add_workers(frame, _rng(seed, spec.stream, "workers"))
    return gpd.GeoDataFrame(frame, geometry="geometry", crs=METRIC_CRS).to_crs(OUTPUT_CRS)


def _rng(seed: int, stream: int, key: str) -> np.random.Generator:
    """An independent random stream per (seed, layer, district), stable across input order."""
    return np.random.default_rng([seed, stream, zlib.crc32(key.encode())])


def _tessellate(
    shape: BaseGeometry, n_cells: int, density: DensityField, rng: np.random.Generator
) -> np.ndarray:
    """Exactly `n_cells` non-empty MultiPolygon cells that tile `shape` without overlap."""
    for _ in range(MAX_TESSELLATION_ATTEMPTS):
        seeds = _order_along_curve(_sample_seeds(shape, n_cells, density, rng), shape)
        cells = _clip_to(shape, _voronoi_cells(seeds, shape))
        if len(cells) == n_cells and not shapely.is_empty(cells).any():
            return cells
    raise RuntimeError(f"could not tessellate a district into {n_cells} cells")


def _sample_seeds(
    shape: BaseGeometry, n_points: int, density: DensityField, rng: np.random.Generator
) -> np.ndarray:
    """`n_points` points strictly inside `shape`, drawn with probability ∝ density."""
    xmin, ymin, xmax, ymax = shape.bounds
    ceiling = density.upper_bound(shape)
    found: list[np.ndarray] = []
    n_found = 0
    while n_found < n_points:
        batch = 1024 + 8 * (n_points - n_found)
        x = rng.uniform(xmin, xmax, batch)
        y = rng.uniform(ymin, ymax, batch)
        keep = rng.uniform(0.0, ceiling, batch) < density(x, y)
        # contains_xy excludes the boundary, so every seed sits in the district's interior.
        keep[keep] = shapely.contains_xy(shape, x[keep], y[keep])
        found.append(np.column_stack([x[keep], y[keep]]))
        n_found += int(keep.sum())
    return np.concatenate(found)[:n_points]


def _order_along_curve(points: np.ndarray, shape: BaseGeometry) -> np.ndarray:
    """Sort points along a Hilbert curve so that consecutive cell numbers are neighbours."""
    keys = gpd.GeoSeries(shapely.points(points)).hilbert_distance(total_bounds=shape.bounds)
    return points[np.argsort(keys.to_numpy(), kind="stable")]


def _voronoi_cells(points: np.ndarray, shape: BaseGeometry) -> np.ndarray:
    """Voronoi cells of `points`, in input order, covering at least `shape`'s envelope."""
    diagram = shapely.voronoi_polygons(
        shapely.multipoints(points), extend_to=shapely.envelope(shape), ordered=True
    )
    return shapely.get_parts(diagram)


def _clip_to(shape: BaseGeometry, cells: np.ndarray) -> np.ndarray:
    """Cells intersected with `shape`, as MultiPolygons (a cell may become multi-part)."""
    clipped = cells.copy()
    # Only cells crossing the boundary need an overlay; interior cells stay untouched, so
    # their shared edges keep exactly the Voronoi coordinates.
    crossing = ~shapely.contains_properly(shape, cells)
    clipped[crossing] = shapely.intersection(cells[crossing], shape)
    return _polygonal(clipped)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Each geometry's polygonal parts as one MultiPolygon (None if it has none)."""
    # An overlay may return a GeometryCollection mixing polygons with stray lines or points
    # where the cell only touches the district; those carry no area and are dropped.
    parts, owner = shapely.get_parts(geoms, return_index=True)
    is_area = (shapely.get_type_id(parts) == shapely.GeometryType.POLYGON) & (shapely.area(parts) > 0)
    out = np.full(len(geoms), None, dtype=object)
    return shapely.multipolygons(parts[is_area], indices=owner[is_area], out=out)


def _apportion_population(cells: np.ndarray, total: int, density: DensityField) -> np.ndarray:
    """Spread a district's population over its cells ∝ area × density at the centroid."""
    centroids = shapely.centroid(cells)
    weights = shapely.area(cells) * density(shapely.get_x(centroids), shapely.get_y(centroids))
    return largest_remainder(weights, total)


def _district_frame(
    spec: LayerSpec, district_code: str, district_name: str, cells: np.ndarray, pops: np.ndarray
) -> pd.DataFrame:
    """One district's rows of a layer, numbered 0001… along the Hilbert order."""
    width = max(4, len(str(len(cells))))
    numbers = [f"{i:0{width}d}" for i in range(1, len(cells) + 1)]
    return pd.DataFrame(
        {
            "code": [f"{spec.prefix}-{district_code}-{num}" for num in numbers],
            "name": [f"{district_name} {spec.label} {num}" for num in numbers],
            "district_code": district_code,
            "population": pops.astype(np.int64),
            "geometry": cells,
        }
    )


def _add_workers(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Give each cell a plausible grid worker: a Chinese name and a unique mobile number."""
    n = len(frame)
    surnames = np.array(list(SURNAMES))[rng.integers(len(SURNAMES), size=n)]
    given = np.array(list(GIVEN_NAME_CHARS))[rng.integers(len(GIVEN_NAME_CHARS), size=(n, 2))]
    two_chars = rng.random(n) < 0.6
    prefixes = np.array(MOBILE_PREFIXES)[rng.integers(len(MOBILE_PREFIXES), size=n)]
    # Distinct 8-digit suffixes make every phone number in the layer unique.
    suffixes = rng.choice(10**8, size=n, replace=False)
    frame = frame.copy()
    frame["worker_name"] = [
        s + g[0] + (g[1] if two else "") for s, g, two in zip(surnames, given, two_chars, strict=True)
    ]
    frame["worker_phone"] = [f"{p}{s:08d}" for p, s in zip(prefixes, suffixes, strict=True)]
    return frame[[c for c in frame.columns if c != "geometry"] + ["geometry"]]
