"""Load a city's district outlines as the `district` layer (WGS 84), and with them the city profile."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import shapely

from gridrisk.geometry.gcj02 import TO_WGS84
from gridrisk.services.city import read_profile, update_profile
from gridrisk.services.layers import LayerWriteResult, Progress, remeasure_layers, write_layer
from gridrisk.settings import Settings

POPULATION_FIELDS = ("population", "population_approx")


def default_districts_path() -> Path:
    """data/nanjing-districts.geojson of the checkout (or of GRIDRISK_DATA_DIR, as in the image)."""
    root = Settings().data_dir or Path(__file__).resolve().parents[3] / "data"
    return root / "nanjing-districts.geojson"


def read_districts(path: Path | None = None, *, coordinates: str | None = None) -> gpd.GeoDataFrame:
    """Read a district file into code/name/name_en/population/geometry in WGS 84.

    COORDINATES says what lon/lat the file holds: "WGS84" (or CGCS2000; a projected file is
    transformed by its CRS), "GCJ-02" or "BD-09" (picked on Chinese web maps). Default: GCJ-02 for
    the shipped Nanjing file, WGS84 for any other.
    """
    coordinates = file_coordinates(path, coordinates)
    gdf = gpd.read_file(path or default_districts_path())
    missing = {"code", "name"} - set(gdf.columns)
    if missing:
        raise ValueError(f"the district file lacks the field(s) {sorted(missing)}")
    if gdf.crs is not None and not gdf.crs.equals("EPSG:4326"):
        gdf = gdf.to_crs(4326)
    geoms = gdf.geometry.values
    if coordinates != "WGS84":
        geoms = shapely.transform(geoms, lambda xy: _to_wgs84(coordinates, xy))
    population = next((gdf[f] for f in POPULATION_FIELDS if f in gdf.columns), 0)
    out = gpd.GeoDataFrame(
        {
            "code": gdf["code"].astype(str),
            "name": gdf["name"].astype(str),
            "name_en": gdf["name_en"] if "name_en" in gdf.columns else None,
            "population": population,
        },
        geometry=gpd.GeoSeries(geoms, crs=4326).make_valid(),
        crs=4326,
    )
    return out.sort_values("code").reset_index(drop=True)


def file_coordinates(path: Path | None, coordinates: str | None) -> str:
    """What the file's lon/lat are: as given, else GCJ-02 for the shipped Nanjing file, else WGS84."""
    if coordinates is not None:
        return coordinates
    return "GCJ-02" if path is None or path == default_districts_path() else "WGS84"


def _to_wgs84(coordinates: str, xy: np.ndarray) -> np.ndarray:
    lon, lat = TO_WGS84[coordinates](xy[:, 0], xy[:, 1])
    return np.column_stack([lon, lat])


def load_districts(
    conn: psycopg.Connection,
    path: Path | None = None,
    *,
    coordinates: str | None = None,
    progress: Progress | None = None,
    codes: list[str] | None = None,
    city_name: str | None = None,
    city_name_en: str | None = None,
) -> LayerWriteResult:
    """Replace the district layer from PATH (optionally only CODES, e.g. a small test city).

    The city profile follows: its names when given, and, unless a metric CRS was set explicitly,
    the metric CRS of the districts' centre; a new one re-measures every other layer's areas.
    """
    gdf = read_districts(path, coordinates=coordinates)
    if codes:
        gdf = gdf[gdf["code"].isin(codes)].reset_index(drop=True)
    before = read_profile(conn).metric.epsg
    minx, miny, maxx, maxy = gdf.total_bounds
    profile = update_profile(
        conn,
        name=city_name,
        name_en=city_name_en,
        centre=((minx + maxx) / 2, (miny + maxy) / 2),
        remeasure=False,
    )
    if profile.metric.epsg != before:  # the districts are measured as they are written, below
        remeasure_layers(conn, profile.metric.epsg, skip="district", progress=progress)
    coordinates = file_coordinates(path, coordinates)
    name = (path or default_districts_path()).name
    source = name if coordinates == "WGS84" else f"{name} ({coordinates} → WGS 84)"
    return write_layer(conn, "district", gdf, source=source, progress=progress)
