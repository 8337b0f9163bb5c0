"""The city profile: which city this database serves and the metric CRS its areas are measured in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from gridrisk.db.sql_files import sql
from gridrisk.geometry.metric_crs import MetricCRS, MetricCRSError, check_metric_epsg, metric_epsg_for
from gridrisk.services.layers import Progress, remeasure_layers


@dataclass(frozen=True)
class CityProfile:
    """The one row of city_profile, with the metric CRS ready to transform."""

    name: str
    name_en: str | None
    metric: MetricCRS
    metric_crs_auto: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "name_en": self.name_en,
            "metric_crs": self.metric.srs,
            "metric_crs_auto": self.metric_crs_auto,
        }


def read_profile(conn: psycopg.Connection) -> CityProfile:
    """The city profile (every database has one: the migration seeds Nanjing's)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(sql("city_profile")).fetchone()
    return CityProfile(row["name"], row["name_en"], MetricCRS(row["metric_srid"]), row["metric_crs_auto"])


def update_profile(
    conn: psycopg.Connection,
    *,
    name: str | None = None,
    name_en: str | None = None,
    metric_epsg: int | None = None,
    auto: bool | None = None,
    centre: tuple[float, float] | None = None,
    remeasure: bool = True,
    progress: Progress | None = None,
) -> CityProfile:
    """Change the profile in the caller's transaction; a new metric CRS re-measures the stored areas.

    METRIC_EPSG sets the CRS explicitly (auto off); AUTO=True makes it follow the city again, from
    CENTRE (lon, lat) or else the middle of the district outlines. REMEASURE=False leaves the areas
    to a caller about to rewrite them (loading districts re-measures every other layer itself).
    """
    old = read_profile(conn)
    if metric_epsg is not None and auto:
        raise MetricCRSError("give a metric CRS or ask for the automatic one, not both")
    if metric_epsg is not None:
        check_metric_epsg(metric_epsg)
        _check_known_to_postgis(conn, metric_epsg)
        auto = False
    following = old.metric_crs_auto if auto is None else auto
    epsg = metric_epsg if metric_epsg is not None else old.metric.epsg
    if following:
        centre = centre or city_centre(conn)
        if centre is not None:
            epsg = metric_epsg_for(*centre)
    conn.execute(
        sql("city_profile_update"),
        {
            "name": name if name is not None else old.name,
            "name_en": name_en if name_en is not None else old.name_en,
            "srid": epsg,
            "auto": following,
        },
    )
    if remeasure and epsg != old.metric.epsg:
        remeasure_layers(conn, epsg, progress=progress)
    return read_profile(conn)


def city_centre(conn: psycopg.Connection) -> tuple[float, float] | None:
    """The middle of the city outline's bounds (lon, lat), or None before districts load."""
    row = conn.execute(sql("city_centre")).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None


def _check_known_to_postgis(conn: psycopg.Connection, epsg: int) -> None:
    if conn.execute("SELECT 1 FROM spatial_ref_sys WHERE srid = %s", (epsg,)).fetchone() is None:
        raise MetricCRSError(f"EPSG:{epsg} is not in PostGIS's spatial_ref_sys; choose another CRS")
