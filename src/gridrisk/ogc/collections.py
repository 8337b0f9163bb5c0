"""The collections OGC API – Features serves, and the SQL that answers them, built from one registry.

Each collection names its table (and the join that brings the four-colour map to cells), its feature
id, its geometry, its properties with their JSON types, which properties are queryable as
`?name=value`, and its one temporal property (what `datetime` filters). The statements are composed
from these constants only: every value a client sends is a bound parameter. Identifiers come from
this module, never from a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import Any, Literal, NamedTuple

from gridrisk.db.sql_files import sql
from gridrisk.ogc.crs import CRS84, SERVED
from gridrisk.ogc.times import TimeFilter
from gridrisk.registry.catalog import KINDS
from gridrisk.registry.kind import FeatureKind, Property
from gridrisk.vocabulary import LEVELS


@dataclass(frozen=True)
class Collection:
    """A feature collection: where its rows live and how each becomes a GeoJSON Feature."""

    id: str
    title: str
    description: str
    table: str  # the collection's table with its alias (what counts read when they skip the join)
    id_sql: str
    id_type: Literal["string", "integer"]
    geom_sql: str
    geometry_types: tuple[str, ...]
    properties: tuple[Property, ...]
    temporal: str  # the property `datetime` filters: the one date-time property of the collection
    keywords: tuple[str, ...] = ()
    join: str = ""  # joined table(s) some properties read; "" when none
    where: str = "true"  # the rows that belong to the collection (a constant condition)
    # FROM and WHERE of the temporal extent when it can skip the join (default: source and where).
    time_source: str = ""

    @property
    def source(self) -> str:
        """The FROM clause: the table and its join."""
        return f"{self.table} {self.join}" if self.join else self.table

    @property
    def queryables(self) -> tuple[Property, ...]:
        """The properties `?name=value` filters on (equality)."""
        return tuple(p for p in self.properties if p.queryable)

    @property
    def filterable(self) -> dict[str, Property]:
        """What a CQL2 filter may name (the queryables document): the queryables and the temporal one."""
        out = {p.name: p for p in self.queryables}
        out[self.temporal] = self.prop(self.temporal)
        return out

    def prop(self, name: str) -> Property:
        return next(p for p in self.properties if p.name == name)


def _risk_properties(alias: str, queryable: tuple[str, ...]) -> tuple[Property, ...]:
    """Code, name, population, area and the four-colour map figures of a cell (grid or district)."""
    c, r = alias, "r"
    props = (
        Property("code", f"{c}.code", "string", "The cell's code (also the feature id)"),
        Property("name", f"{c}.name", "string", "The cell's name"),
        Property("district_code", f"{c}.district_code", "string", "Code of the district holding the cell"),
        Property("population", f"{c}.population", "integer", "Resident population"),
        Property(
            "area_m2",
            f"round({c}.area_m2::numeric, 1)",
            "number",
            "Area in m², in the city's metric CRS (GET /city)",
        ),
        Property(
            "colour",
            f"{r}.colour",
            "string",
            "Map colour: the pinned colour if pinned, else computed",
            enum=LEVELS,
            joined=True,
        ),
        Property(
            "computed_colour",
            f"{r}.computed_colour",
            "string",
            "Highest level of the active risk sources and unremediated hazard points in the cell",
            enum=LEVELS,
            joined=True,
        ),
        Property(
            "pinned", f"({r}.pinned_colour IS NOT NULL)", "boolean", "Colour pinned by hand", joined=True
        ),
        Property("n_red", f"{r}.n_red", "integer", "Red (重大) sources and hazard points in it", joined=True),
        Property("n_orange", f"{r}.n_orange", "integer", "Orange (较大) ones", joined=True),
        Property("n_yellow", f"{r}.n_yellow", "integer", "Yellow (一般) ones", joined=True),
        Property("n_blue", f"{r}.n_blue", "integer", "Blue (低) ones", joined=True),
        Property("score", f"{r}.score", "number", "Highest assessment score in the cell", joined=True),
        Property(
            "changed_at",
            f"{r}.changed_at",
            "string",
            "When the cell's colour or counts last changed (what `datetime` filters)",
            format="date-time",
            joined=True,
        ),
    )
    return tuple(replace(p, queryable=True) if p.name in queryable else p for p in props)


_GRID_QUERYABLE = ("code", "name", "district_code", "colour", "computed_colour")
_GRIDS = {
    "comprehensive": (
        "Comprehensive grid (综合网格)",
        "the social-governance grid; each cell has a grid worker",
    ),
    "emergency": ("Emergency grid (应急格)", "coarser cells that organise emergency response"),
    "safety": (
        "Safety-supervision grid (安监格)",
        "fine cells that organise safety inspection of enterprises",
    ),
}


def _cells(
    cid: str,
    layer: str,
    title: str,
    description: str,
    properties: tuple[Property, ...],
    keywords: tuple[str, ...],
) -> Collection:
    """A collection of the cells of LAYER, joined to their four-colour map figures."""
    return Collection(
        id=cid,
        title=title,
        description=description,
        table="cells c",
        join="JOIN cell_risk r ON r.cell_id = c.id",
        where=f"c.layer = '{layer}'",
        id_sql="c.code",
        id_type="string",
        geom_sql="c.geom",
        geometry_types=("MultiPolygon",),
        properties=properties,
        temporal="changed_at",
        keywords=keywords,
        time_source=f"cell_risk r WHERE r.layer = '{layer}'",
    )


def _grid(layer: str) -> Collection:
    title, what = _GRIDS[layer]
    return _cells(
        layer,
        layer,
        title,
        f"Cells of the {layer} grid, {what}, with their four-colour risk map: colour, "
        "computed colour, counts of sources per level and score. Feature id: the cell code.",
        _risk_properties("c", _GRID_QUERYABLE),
        ("grid", "four-colour map", layer),
    )


def _registry(kind: FeatureKind) -> Collection:
    """A feature kind's collection (registry/): integer ids, filtered in time by `updated_at`."""
    a, p = kind.alias, kind.publish
    return Collection(
        id=p.collection,
        title=p.title,
        description=p.description,
        table=f"{kind.table} {a}",
        id_sql=f"{a}.id",
        id_type="integer",
        geom_sql=f"{a}.geom",
        geometry_types=kind.geometry.types,
        properties=kind.published,
        temporal="updated_at",
        keywords=p.keywords,
    )


_BILINGUAL = re.compile(r"(?P<en>.+?) \((?P<zh>[^()]*[\u4e00-\u9fff][^()]*)\)")


def zh_first(title: str) -> str:
    """'Shelters (应急避难场所)' → '应急避难场所 Shelters': the staff read Chinese first, in QGIS too."""
    m = _BILINGUAL.fullmatch(title)
    return f"{m['zh']} {m['en']}" if m else title


# Titles are written 'English (中文)' beside the English descriptions, and published Chinese first.
COLLECTIONS: dict[str, Collection] = {
    c.id: replace(c, title=zh_first(c.title))
    for c in (
        _grid("comprehensive"),
        _grid("emergency"),
        _grid("safety"),
        _cells(
            "districts",
            "district",
            "Districts (区)",
            "The city's districts (admin layer `district`) with their population, area and "
            "four-colour risk figures. Feature id: the district code.",
            (
                Property("code", "c.code", "string", "District code (also the feature id)", queryable=True),
                Property("name", "c.name", "string", "District name", queryable=True),
                Property("name_en", "c.name_en", "string", "District name in English"),
                *(
                    p
                    for p in _risk_properties("c", ("colour",))
                    if p.name not in ("code", "name", "district_code")
                ),
            ),
            ("district", "administrative"),
        ),
        *(_registry(kind) for kind in KINDS.values()),
    )
}


# ---------------------------------------------------------------------------------------------
# Query shapes and the statements for them


class Shape(NamedTuple):
    """What varies between items statements of one collection (the cache key, with the id)."""

    filters: tuple[str, ...] = ()
    bbox: Literal["", "box", "antimeridian"] = ""
    start: bool = False
    end: Literal["", "<=", "<"] = ""
    crs: str = CRS84  # of the answer's coordinates (ogc/crs.py)
    bbox_crs: str = CRS84  # of the bbox
    cql: str = ""  # a CQL2 filter's condition, placeholders only (ogc/cql2_filter.py)


def feature_sql(c: Collection, crs: str = CRS84) -> str:
    """A text expression: the row as a GeoJSON Feature (concatenated, so the geometry is not re-parsed)."""
    pid = f"{c.id_sql}::text" if c.id_type == "integer" else f"to_json({c.id_sql})::text"
    props = ", ".join(f"'{p.name}', {p.sql}" for p in c.properties)
    out = SERVED[crs]
    # json_build_object takes at most 100 arguments: 50 properties, far more than any collection has.
    return (
        f"""'{{"type":"Feature","id":' || {pid} || ',"geometry":' || """
        # Option 0: no `crs` member (RFC 7946 has none; Part 2 names the CRS in Content-Crs).
        f"ST_AsGeoJSON({out.geometry_sql(c.geom_sql)}, {out.precision}, 0) || "
        f"""',"properties":' || json_build_object({props})::text || '}}'"""
    )


def _conditions(c: Collection, shape: Shape) -> tuple[list[str], bool]:
    """The WHERE conditions of SHAPE, and whether any of them reads the joined table."""
    conds = [c.where]
    env = "ST_MakeEnvelope(%(minx)s, %(miny)s, {}, %(maxy)s, 4326)"
    box_crs = SERVED[shape.bbox_crs]
    if shape.bbox and box_crs.projected:
        # A box in metres is not a box in degrees: its outline, densified, in lon/lat.
        box = f"ST_MakeEnvelope(%(minx)s, %(miny)s, %(maxx)s, %(maxy)s, {box_crs.srid})"
        conds.append(f"ST_Intersects({c.geom_sql}, ST_Transform(ST_Segmentize({box}, %(step)s), 4326))")
    elif shape.bbox == "box":
        conds.append(f"ST_Intersects({c.geom_sql}, {env.format('%(maxx)s')})")
    elif shape.bbox == "antimeridian":
        # minx > maxx: the box crosses 180°; OGC reads it as the two boxes on either side.
        east = env.format("180")
        west = "ST_MakeEnvelope(-180, %(miny)s, %(maxx)s, %(maxy)s, 4326)"
        conds.append(f"(ST_Intersects({c.geom_sql}, {east}) OR ST_Intersects({c.geom_sql}, {west}))")
    joined = False
    casts = {"string": "text", "integer": "bigint", "number": "float8", "boolean": "boolean"}
    for name in shape.filters:
        p = c.prop(name)
        conds.append(f"{p.sql} = %(f_{name})s::{casts[p.type]}")
        joined |= p.joined
    t = c.prop(c.temporal)
    if shape.start:
        conds.append(f"{t.sql} >= %(t_start)s::timestamptz")
    if shape.end:
        conds.append(f"{t.sql} {shape.end} %(t_end)s::timestamptz")
    joined |= t.joined and bool(shape.start or shape.end)
    if shape.cql:
        conds.append(shape.cql)
        joined |= any(p.joined for p in c.filterable.values())
    return conds, joined


@lru_cache(maxsize=512)  # bounded: every distinct CQL2 filter shape is a statement
def items_sql(collection_id: str, shape: Shape) -> str:
    """The one statement that answers an items request of SHAPE (cached: a handful of shapes recur)."""
    c = COLLECTIONS[collection_id]
    conds, joined = _conditions(c, shape)
    return sql("ogc_items").format(
        feature=feature_sql(c, shape.crs),
        order_key=c.id_sql,
        source=c.source,
        where=" AND ".join(conds),
        count_source=c.source if joined else c.table,
    )


@cache
def item_sql(collection_id: str, crs: str = CRS84) -> str:
    """The statement that reads one feature by its id, in CRS."""
    c = COLLECTIONS[collection_id]
    cast = "bigint" if c.id_type == "integer" else "text"
    return (
        f"SELECT {feature_sql(c, crs)} AS feature FROM {c.source} WHERE {c.where}"
        f" AND {c.id_sql} = %(id)s::{cast}"
    )


@cache
def extents_sql(collection_ids: tuple[str, ...]) -> str:
    """One statement: the bbox (CRS84) and time span of each collection, computed from the data."""
    parts = []
    for cid in collection_ids:
        c = COLLECTIONS[cid]
        t = c.prop(c.temporal)
        times = c.time_source or f"{c.source} WHERE {c.where}"
        parts.append(
            f"SELECT '{c.id}' AS id, ST_XMin(e) AS minx, ST_YMin(e) AS miny, ST_XMax(e) AS maxx,"
            f" ST_YMax(e) AS maxy, tmin, tmax"
            f" FROM (SELECT ST_Extent({c.geom_sql}) AS e FROM {c.table} WHERE {c.where}) s,"
            f" (SELECT min({t.sql}) AS tmin, max({t.sql}) AS tmax FROM {times}) t"
        )
    return "\nUNION ALL\n".join(parts)


def params_for(
    shape: Shape,
    *,
    limit: int,
    offset: int,
    bbox: tuple[float, float, float, float] | None,
    filters: dict[str, Any],
    time: TimeFilter | None,
) -> dict[str, Any]:
    """The bound values of an items statement."""
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if bbox is not None:
        params.update(zip(("minx", "miny", "maxx", "maxy"), bbox, strict=True))
        # Points along a projected box's edges, about 64 per side, before it becomes lon/lat.
        params["step"] = max(bbox[2] - bbox[0], bbox[3] - bbox[1], 1.0) / 64
    for name in shape.filters:
        params[f"f_{name}"] = filters[name]
    if time is not None:
        params["t_start"], params["t_end"] = time.start, time.end
    return params
