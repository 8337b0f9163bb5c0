"""Checks and lookups every registry route (risk sources, shelters, hazard points) shares."""

from __future__ import annotations

from psycopg import AsyncConnection

from gridrisk.db.sql_files import sql
from gridrisk.errors import InvalidInput


async def check_inside_city(conn: AsyncConnection, geometry_json: str) -> None:
    """422 unless the geometry touches the city (city_parts): a swapped lon/lat lands far away."""
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM city_parts p, (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326) AS g) x"
        " WHERE p.geom && x.g AND ST_Intersects(p.geom, x.g)) AS inside",
        (geometry_json,),
    )
    if not (await cur.fetchone())["inside"]:
        raise InvalidInput(
            "The geometry lies outside the city; check the coordinates (WGS 84 lon/lat, lon first).",
            errors=[{"field": "geometry", "message": "outside the city"}],
        )


async def district_of(conn: AsyncConnection, geometry_json: str) -> str | None:
    """The district holding the geometry's point on surface; None outside every district."""
    cur = await conn.execute(sql("district_of"), {"geometry": geometry_json})
    row = await cur.fetchone()
    return row["code"] if row else None


async def check_district(conn: AsyncConnection, code: str) -> None:
    """422 naming district_code unless it is a loaded district."""
    cur = await conn.execute("SELECT 1 FROM cells WHERE layer = 'district' AND code = %s", (code,))
    if await cur.fetchone() is None:
        raise InvalidInput(
            f"Unknown district '{code}'; see GET /districts for the codes.",
            errors=[{"field": "district_code", "message": "unknown district"}],
        )
