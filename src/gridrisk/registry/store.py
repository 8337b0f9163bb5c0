"""The registry's database work for the API, derived from a kind's description: reads, checks, writes.

Statements are composed from the description's identifiers only (every value is bound) and cached
per kind. Writes run in the caller's transaction; the table's triggers then assign cells, recolour
the map, write the history and the outbox event inside the same statement.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from psycopg import AsyncConnection
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb
from pydantic import BaseModel
from starlette.responses import Response

from gridrisk.api.etags import check_version, etag
from gridrisk.api.geojson import GEOJSON, raw_json
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, InvalidInput, NotFound
from gridrisk.registry.kind import DISTRICT, FeatureKind, Lookup

_GEOM = pgsql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)").format(pgsql.Placeholder("geometry"))
_STAMP = pgsql.SQL("version = version + 1, updated_at = now(), updated_by = %(who)s")


# ---------------------------------------------------------------------------------------------
# Statements


@cache
def _statements(kind: FeatureKind) -> dict[str, Any]:
    t = pgsql.Identifier(kind.table)
    return {
        "exists": pgsql.SQL("SELECT 1 FROM {} WHERE id = %s").format(t),
        # Every column, and the geometry as GeoJSON (a new site re-derives what depends on it).
        "lock": pgsql.SQL(
            "SELECT t.*, ST_AsGeoJSON(t.geom) AS geometry FROM {} t WHERE t.id = %s FOR UPDATE"
        ).format(t),
        "close": pgsql.SQL("UPDATE {} SET status = 'closed', {} WHERE id = %(id)s").format(t, _STAMP),
        "history": pgsql.SQL(
            "SELECT version, at, by, op, changes FROM {} WHERE {} = %(id)s ORDER BY version"
        ).format(pgsql.Identifier(kind.history_table), pgsql.Identifier(kind.history_key)),
    }


@cache
def search_sql(kind: FeatureKind) -> str:
    """One statement per kind: the page of ids matching the filters (each skipped when not given)."""
    a = kind.alias
    conds = [
        f"(%(bbox)s::float8[] IS NULL OR {a}.geom && ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2],"
        f" %(bbox)s[3], %(bbox)s[4], 4326))"
    ]
    conds += [f.condition for f in kind.filters if f.sql is not None]
    if kind.cells is not None:
        table, column = kind.cells
        conds.append(
            f"(%(cell_id)s::bigint IS NULL OR EXISTS (SELECT 1 FROM {table} x"
            f" WHERE x.{column} = {a}.id AND x.cell_id = %(cell_id)s))"
        )
    return sql("registry_search").format(table=kind.table, alias=a, where="\n      AND ".join(conds))


# ---------------------------------------------------------------------------------------------
# Reads


async def features(conn: AsyncConnection, kind: FeatureKind, ids: list[int]) -> list[dict]:
    """The Features (JSON text built by the database) and versions of IDS, in that order."""
    cur = await conn.execute(sql(kind.feature_sql), {"ids": ids})
    return await cur.fetchall()


async def feature_response(
    conn: AsyncConnection, kind: FeatureKind, item_id: int, status: int = 200
) -> Response:
    """The feature as read inside the caller's transaction (so after the triggers), with its ETag."""
    rows = await features(conn, kind, [item_id])
    if not rows:
        raise NotFound(f"No {kind.noun} with id {item_id}.")
    headers = {"ETag": etag(rows[0]["version"])}
    if status == 201:
        headers["Location"] = f"{kind.path}/{item_id}"
        return Response(rows[0]["feature"].encode(), status_code=201, media_type=GEOJSON, headers=headers)
    return raw_json(rows[0]["feature"], headers=headers)


async def lock(conn: AsyncConnection, kind: FeatureKind, item_id: int, expected: int | None) -> dict:
    """The feature's row, locked for this transaction (concurrent writers queue instead of racing),
    when it is still the version EXPECTED (412 otherwise; None: any)."""
    cur = await conn.execute(_statements(kind)["lock"], (item_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No {kind.noun} with id {item_id}.")
    check_version(row["version"], expected)
    return row


async def history(conn: AsyncConnection, kind: FeatureKind, item_id: int) -> list[dict]:
    """Every version of the feature (404 for an unknown id)."""
    cur = await conn.execute(_statements(kind)["exists"], (item_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"No {kind.noun} with id {item_id}.")
    query = sql(kind.history_sql) if kind.history_sql else _statements(kind)["history"]
    cur = await conn.execute(query, {"id": item_id})
    return await cur.fetchall()


async def cell_id(conn: AsyncConnection, layer: str, code: str) -> int:
    """The id of cell CODE of LAYER (404 when there is none)."""
    cur = await conn.execute(sql("registry_cell_id"), {"layer": layer, "code": code})
    found = await cur.fetchone()
    if found is None:
        raise NotFound(f"No cell '{code}' in layer '{layer}'.")
    return found["id"]


async def search(conn: AsyncConnection, kind: FeatureKind, params: dict[str, Any]) -> tuple[int, list[str]]:
    """(how many match, the page's Features as JSON texts) for the bound search PARAMS."""
    cur = await conn.execute(search_sql(kind), params)
    found = await cur.fetchone()
    rows = await features(conn, kind, list(found["ids"])) if found["ids"] else []
    return found["matched"], [r["feature"] for r in rows]


# ---------------------------------------------------------------------------------------------
# Checks


async def check_inside_city(conn: AsyncConnection, geometry_json: str) -> None:
    """422 unless the geometry touches the city (city_parts): a swapped lon/lat lands far away."""
    cur = await conn.execute(sql("registry_inside_city"), {"geometry": geometry_json})
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


@cache
def _lookup_sql(lookup: Lookup) -> tuple[pgsql.Composed, pgsql.Composed]:
    table, key = pgsql.Identifier(lookup.table), pgsql.Identifier(lookup.key)
    where = pgsql.SQL(lookup.where)
    return (
        pgsql.SQL("SELECT 1 FROM {} WHERE {} AND {} = %s").format(table, where, key),
        pgsql.SQL("SELECT string_agg({k}, ', ' ORDER BY {k}) AS known FROM {} WHERE {}").format(
            table, where, k=key
        ),
    )


async def check_lookups(conn: AsyncConnection, kind: FeatureKind, values: dict[str, Any]) -> None:
    """422 naming the field for the first value that is not a key of its reference table."""
    for lookup in kind.lookups:
        value = values.get(lookup.field)
        if value is None:
            continue
        exists, known_sql = _lookup_sql(lookup)
        cur = await conn.execute(exists, (value,))
        if await cur.fetchone() is not None:
            continue
        known = None
        if lookup.known:
            cur = await conn.execute(known_sql)
            known = (await cur.fetchone())["known"]
        detail, message = lookup.problem(value, known)
        raise InvalidInput(detail, errors=[{"field": lookup.field, "message": message}])


async def is_district(conn: AsyncConnection, code: str) -> bool:
    """Whether CODE is a loaded district."""
    cur = await conn.execute(_lookup_sql(DISTRICT)[0], (code,))
    return await cur.fetchone() is not None


async def check_unique(
    conn: AsyncConnection, kind: FeatureKind, values: dict[str, Any], item_id: int | None = None
) -> None:
    """409 naming the field when a unique value is held by another feature (the index still guards)."""
    for column in kind.unique:
        value = values.get(column)
        if value is None:
            continue
        query = pgsql.SQL("SELECT 1 FROM {} WHERE {} = %s AND id IS DISTINCT FROM %s").format(
            pgsql.Identifier(kind.table), pgsql.Identifier(column)
        )
        cur = await conn.execute(query, (value, item_id))
        if await cur.fetchone() is not None:
            then = "; PATCH it instead" if column == kind.key and item_id is None else ""
            raise Conflict(
                f"A {kind.noun} with {column} '{value}' is already registered{then}.",
                errors=[{"field": column, "message": "already registered"}],
            )


def raise_problems(problems: list[dict[str, str]]) -> None:
    """422 listing PROBLEMS ({field, message}) when there are any."""
    if problems:
        detail = "; ".join(p["message"] for p in problems)
        raise InvalidInput(detail[0].upper() + detail[1:] + ".", errors=problems)


# ---------------------------------------------------------------------------------------------
# Writes


def _bindable(kind: FeatureKind, cols: dict[str, Any]) -> dict[str, Any]:
    return {k: (Jsonb(v) if k in kind.json_columns else v) for k, v in cols.items()}


async def insert(
    conn: AsyncConnection, kind: FeatureKind, cols: dict[str, Any], geometry: str, who: str
) -> int:
    cols = {**cols, "created_by": who, "updated_by": who}
    stmt = pgsql.SQL("INSERT INTO {} ({}, geom) VALUES ({}, {}) RETURNING id").format(
        pgsql.Identifier(kind.table),
        pgsql.SQL(", ").join(map(pgsql.Identifier, cols)),
        pgsql.SQL(", ").join(map(pgsql.Placeholder, cols)),
        _GEOM,
    )
    cur = await conn.execute(stmt, {**_bindable(kind, cols), "geometry": geometry})
    return (await cur.fetchone())["id"]


async def update(
    conn: AsyncConnection,
    kind: FeatureKind,
    item_id: int,
    cols: dict[str, Any],
    geometry: str | None,
    who: str,
) -> None:
    """One UPDATE: the columns, the geometry when given, a new version."""
    sets = [pgsql.SQL("{} = {}").format(pgsql.Identifier(k), pgsql.Placeholder(k)) for k in cols]
    if geometry is not None:
        sets.append(pgsql.SQL("geom = {}").format(_GEOM))
    sets.append(_STAMP)
    stmt = pgsql.SQL("UPDATE {} SET {} WHERE id = %(id)s").format(
        pgsql.Identifier(kind.table), pgsql.SQL(", ").join(sets)
    )
    await conn.execute(stmt, {**_bindable(kind, cols), "geometry": geometry, "who": who, "id": item_id})


async def close_row(conn: AsyncConnection, kind: FeatureKind, item_id: int, who: str) -> None:
    """The soft close: status closed, a new version (kept, with its history)."""
    await conn.execute(_statements(kind)["close"], {"id": item_id, "who": who})


async def create(conn: AsyncConnection, kind: FeatureKind, body: BaseModel, who: str) -> Response:
    """Check and insert a Create model; the feature as the triggers left it (201)."""
    ext = kind.extension
    if ext.check is not None:
        raise_problems(ext.check(body))
    geometry = body.geometry.to_json()
    cols = kind.columns_of(body)
    await check_lookups(conn, kind, cols)
    if kind.geometry.inside_city:
        await check_inside_city(conn, geometry)
    if kind.geometry.district and cols.get("district_code") is None:
        cols["district_code"] = await district_of(conn, geometry)
    if ext.create is not None:
        await ext.create(conn, body, cols)
    await check_unique(conn, kind, cols)
    item_id = await insert(conn, kind, cols, geometry, who)
    return await feature_response(conn, kind, item_id, status=201)


async def patch(
    conn: AsyncConnection, kind: FeatureKind, item_id: int, body: BaseModel, who: str, expected: int | None
) -> Response:
    """Change the fields sent (If-Match checked on the locked row); nothing sent changes nothing."""
    sent = body.model_dump(exclude_unset=True, by_alias=True)
    row = await lock(conn, kind, item_id, expected)
    if not sent:
        return await feature_response(conn, kind, item_id)
    cols = {k: v for k, v in sent.items() if k in kind.plain}
    await check_lookups(conn, kind, cols)
    geometry = body.geometry.to_json() if getattr(body, "geometry", None) is not None else None
    if geometry is not None and kind.geometry.inside_city:
        await check_inside_city(conn, geometry)
    if kind.geometry.district and sent.get("district_code") is None and ("district_code" in sent or geometry):
        cols["district_code"] = await district_of(conn, geometry or row["geometry"])
    if kind.extension.patch is not None:
        await kind.extension.patch(conn, row, body, sent, cols)
    await check_unique(conn, kind, cols, item_id)
    await update(conn, kind, item_id, cols, geometry, who)
    return await feature_response(conn, kind, item_id)


async def close(
    conn: AsyncConnection, kind: FeatureKind, item_id: int, who: str, expected: int | None
) -> Response:
    """Close the feature (soft delete); closing a closed one changes nothing."""
    row = await lock(conn, kind, item_id, expected)
    if row["status"] != "closed":
        if kind.extension.close is not None:
            await kind.extension.close(conn, row, who)
        else:
            await close_row(conn, kind, item_id, who)
    return await feature_response(conn, kind, item_id)
