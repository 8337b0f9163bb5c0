"""Load the district outlines (shipped in GCJ-02) as the `district` administrative layer in WGS 84."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import psycopg

from gridrisk.geometry.gcj02 import geometry_gcj02_to_wgs84
from gridrisk.services.layers import LayerWriteResult, Progress, write_layer
from gridrisk.settings import Settings


def default_districts_path() -> Path:
    """data/nanjing-districts.geojson of the checkout (or of GRIDRISK_DATA_DIR, as in the image)."""
    root = Settings().data_dir or Path(__file__).resolve().parents[3] / "data"
    return root / "nanjing-districts.geojson"


def read_districts(path: Path | None = None, *, source_is_gcj02: bool = True) -> gpd.GeoDataFrame:
    """Read the district file into code/name/name_en/population/geometry, converted to WGS 84."""
    gdf = gpd.read_file(path or default_districts_path())
    missing = {"code", "name"} - set(gdf.columns)
    if missing:
        raise ValueError(f"the district file lacks the field(s) {sorted(missing)}")
    geoms = gdf.geometry.values
    if source_is_gcj02:
        geoms = geometry_gcj02_to_wgs84(geoms)
    out = gpd.GeoDataFrame(
        {
            "code": gdf["code"].astype(str),
            "name": gdf["name"].astype(str),
            "name_en": gdf["name_en"] if "name_en" in gdf.columns else None,
            "population": gdf["population_approx"] if "population_approx" in gdf.columns else 0,
        },
        geometry=gpd.GeoSeries(geoms, crs=4326).make_valid(),
        crs=4326,
    )
    return out.sort_values("code").reset_index(drop=True)


def load_districts(
    conn: psycopg.Connection,
    path: Path | None = None,
    *,
    source_is_gcj02: bool = True,
    progress: Progress | None = None,
    codes: list[str] | None = None,
) -> LayerWriteResult:
    """Replace the district layer from PATH (optionally only CODES, e.g. a small test city)."""
    gdf = read_districts(path, source_is_gcj02=source_is_gcj02)
    if codes:
        gdf = gdf[gdf["code"].isin(codes)].reset_index(drop=True)
    source = f"{(path or default_districts_path()).name} (GCJ-02 → WGS 84)"
    return write_layer(conn, "district", gdf, source=source, progress=progress)
