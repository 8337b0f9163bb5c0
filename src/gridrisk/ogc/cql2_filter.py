"""CQL2 filters (OGC API – Features Part 3) as SQL over a collection's queryables, every value bound.

`cql2` (the Python binding of cql2-rs) parses cql2-text and cql2-json into the CQL2 JSON tree; this
module walks that tree and writes a WHERE condition from the collection's own property expressions
only. A property that is not queryable, an operator or function not listed in CONFORMANCE, a literal
of the wrong type, a tree deeper than MAX_DEPTH or larger than MAX_NODES, a text literal longer than
MAX_TEXT or a geometry with more than MAX_POINTS points: each is a 400 naming what is wrong. Literals
never reach the SQL text: they are parameters (%(q0)s, %(q1)s, ...), so the statement's text depends
on the filter's shape alone and is cached like any other items statement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import cql2

from gridrisk.errors import BadRequest
from gridrisk.ogc.crs import Crs

MAX_DEPTH = 20
MAX_NODES = 500
MAX_TEXT = 1_000
MAX_POINTS = 10_000
MAX_FILTER_CHARS = 100_000
GEOMETRY = "geometry"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
]
COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
SPATIAL = {
    "s_intersects": "ST_Intersects",
    "s_within": "ST_Within",
    "s_contains": "ST_Contains",
    "s_disjoint": "ST_Disjoint",
    "s_equals": "ST_Equals",
    "s_touches": "ST_Touches",
    "s_overlaps": "ST_Overlaps",
    "s_crosses": "ST_Crosses",
}
CASTS = {"string": "text", "integer": "float8", "number": "float8", "boolean": "boolean"}


@dataclass
class Compiled:
    """A filter as SQL: the condition (placeholders only) and the values it binds."""

    sql: str
    values: dict[str, Any] = field(default_factory=dict)


def _bad(message: str, field_: str = "filter") -> BadRequest:
    return BadRequest(message, errors=[{"field": field_, "message": message}])


def parse(text: str, lang: str | None) -> dict[str, Any]:
    """The CQL2 JSON tree of a `filter` parameter in `filter-lang` (cql2-text by default)."""
    if len(text) > MAX_FILTER_CHARS:
        raise _bad(f"The filter is {len(text):,} characters long; at most {MAX_FILTER_CHARS:,}.")
    lang = (lang or "cql2-text").strip().lower()
    try:
        if lang == "cql2-text":
            return cql2.parse_text(text).to_json()
        if lang == "cql2-json":
            return cql2.parse_json(text).to_json()
    except Exception as exc:  # cql2 raises its own ParseError and ValidationError, and ValueError
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:4]) if first else type(exc).__name__
        raise _bad(f"The filter is not valid {lang}: {detail}") from None
    raise _bad(f"filter-lang={lang!r} is not served; use cql2-text or cql2-json.", "filter-lang")


class _Compiler:
    def __init__(self, properties: dict[str, Any], geom_sql: str, crs: Crs) -> None:
        self.properties = properties  # queryable name → Property (sql, type, format)
        self.geom_sql = geom_sql
        self.crs = crs
        self.values: dict[str, Any] = {}
        self.nodes = 0

    def bind(self, value: Any) -> str:
        key = f"q{len(self.values)}"
        self.values[key] = value
        return f"%({key})s"

    # -- boolean expressions ------------------------------------------------------------------

    def condition(self, node: Any, depth: int = 0) -> str:
        self.count(depth)
        if isinstance(node, bool):
            return "true" if node else "false"
        if not isinstance(node, dict) or "op" not in node:
            raise _bad(f"Expected a condition, got {_show(node)}.")
        op, args = str(node["op"]).lower(), node.get("args") or []
        if op in ("and", "or"):
            if len(args) < 2:
                raise _bad(f"{op.upper()} needs two or more conditions.")
            return "(" + f" {op.upper()} ".join(self.condition(a, depth + 1) for a in args) + ")"
        if op == "not":
            return f"(NOT {self.condition(self.one(args, op), depth + 1)})"
        if op in COMPARISONS:
            left, right = self.pair(args, op)
            a, ta = self.scalar(left, depth + 1)
            b, tb = self.scalar(right, depth + 1, ta)
            self.same_type(ta, tb, op)
            return f"({a} {COMPARISONS[op]} {b})"
        if op == "like":
            left, right = self.pair(args, op)
            a, ta = self.scalar(left, depth + 1)
            b, tb = self.scalar(right, depth + 1, "string")
            if ta != "string" or tb != "string":
                raise _bad("LIKE compares text with a text pattern.")
            return f"({a} LIKE {b})"
        if op == "between":
            if len(args) != 3:
                raise _bad("BETWEEN needs a value, a low and a high bound.")
            a, ta = self.scalar(args[0], depth + 1)
            lo, tlo = self.scalar(args[1], depth + 1, ta)
            hi, thi = self.scalar(args[2], depth + 1, ta)
            self.same_type(ta, tlo, op)
            self.same_type(ta, thi, op)
            return f"({a} BETWEEN {lo} AND {hi})"
        if op == "in":
            left, items = self.pair(args, op)
            a, ta = self.scalar(left, depth + 1)
            if not isinstance(items, list) or not items or len(items) > MAX_NODES:
                raise _bad(f"IN needs a list of 1 to {MAX_NODES} values.")
            literals = [self.literal(v, ta) for v in items]
            cast = "timestamptz" if ta == "timestamp" else CASTS.get(ta, "text")
            return f"({a} = ANY({self.bind([v for v, _ in literals])}::{cast}[]))"
        if op == "isnull":
            a, _ = self.scalar(self.one(args, op), depth + 1)
            return f"({a} IS NULL)"
        if op in SPATIAL:
            left, right = self.pair(args, op)
            return f"{SPATIAL[op]}({self.geometry(left)}, {self.geometry(right)})"
        raise _bad(
            f"The operator or function '{node['op']}' is not supported here. Supported: AND, OR, NOT, "
            "=, <>, <, <=, >, >=, LIKE, BETWEEN, IN, IS NULL, CASEI(), and the S_ spatial functions."
        )

    # -- values ------------------------------------------------------------------------------

    def scalar(self, node: Any, depth: int, expect: str | None = None) -> tuple[str, str]:
        """(SQL, type) of a property, CASEI(...) or literal."""
        self.count(depth)
        if isinstance(node, dict) and "property" in node:
            return self.prop(node["property"])
        if isinstance(node, dict) and str(node.get("op", "")).lower() == "casei":
            inner, t = self.scalar(self.one(node.get("args") or [], "casei"), depth + 1, "string")
            if t != "string":
                raise _bad("CASEI applies to text.")
            return f"lower({inner})", "string"
        if isinstance(node, dict) and "op" in node:
            raise _bad(f"The function or operator '{node['op']}' is not supported in a comparison.")
        value, t = self.literal(node, expect)
        cast = "timestamptz" if t == "timestamp" else CASTS.get(t, "text")
        return f"{self.bind(value)}::{cast}", t

    def prop(self, name: Any) -> tuple[str, str]:
        p = self.properties.get(name)
        if p is None or name == GEOMETRY:
            known = ", ".join(sorted(self.properties))
            raise _bad(f"'{name}' is not a queryable of this collection; queryables: {known}.")
        if p.format == "date-time":
            return p.sql, "timestamp"
        return p.sql, p.type

    def literal(self, node: Any, expect: str | None) -> tuple[Any, str]:
        if isinstance(node, bool):
            return node, "boolean"
        if isinstance(node, int | float):
            return float(node), "number"
        if isinstance(node, str):
            if len(node) > MAX_TEXT:
                raise _bad(f"A text literal is {len(node):,} characters long; at most {MAX_TEXT:,}.")
            return node, "string"
        if isinstance(node, dict) and ("timestamp" in node or "date" in node):
            return str(node.get("timestamp") or node.get("date")), "timestamp"
        raise _bad(f"Expected a value{f' ({expect})' if expect else ''}, got {_show(node)}.")

    def same_type(self, a: str, b: str, op: str) -> None:
        numeric = {"integer", "number"}
        if a != b and not (a in numeric and b in numeric):
            raise _bad(f"{op.upper()} compares a {a} with a {b}.")

    def geometry(self, node: Any) -> str:
        if isinstance(node, dict) and node.get("property") == GEOMETRY:
            return self.geom_sql
        if isinstance(node, dict) and "property" in node:
            raise _bad(f"'{node['property']}' is not a geometry; the spatial property is '{GEOMETRY}'.")
        if isinstance(node, dict) and "bbox" in node:
            box = node["bbox"]
            if (
                not isinstance(box, list)
                or len(box) not in (4, 6)
                or not all(isinstance(v, int | float) for v in box)
            ):
                raise _bad("BBOX needs four (or six) numbers.")
            x0, y0, x1, y1 = (
                (box[0], box[1], box[2], box[3]) if len(box) == 4 else (box[0], box[1], box[3], box[4])
            )
            corners = ", ".join(self.bind(float(v)) for v in (x0, y0, x1, y1))
            return self.to_storage(f"ST_MakeEnvelope({corners}, {self.crs.srid or 4326})")
        if isinstance(node, dict) and "type" in node and "coordinates" in node:
            points = json.dumps(node["coordinates"]).count("[") - 1
            if points > MAX_POINTS:
                raise _bad(f"A geometry literal has over {MAX_POINTS:,} points.")
            geom = f"ST_SetSRID(ST_GeomFromGeoJSON({self.bind(json.dumps(node))}), {self.crs.srid or 4326})"
            return self.to_storage(geom)
        raise _bad(f"Expected the geometry property or a geometry literal, got {_show(node)}.")

    def to_storage(self, geom: str) -> str:
        """A literal in filter-crs (axis order as that CRS has it) as stored lon/lat."""
        if self.crs.flip:
            geom = f"ST_FlipCoordinates({geom})"
        return geom if self.crs.srid in (0, 4326) else f"ST_Transform({geom}, 4326)"

    # -- limits ------------------------------------------------------------------------------

    def count(self, depth: int) -> None:
        self.nodes += 1
        if depth > MAX_DEPTH:
            raise _bad(f"The filter nests deeper than {MAX_DEPTH} levels.")
        if self.nodes > MAX_NODES:
            raise _bad(f"The filter has more than {MAX_NODES} terms.")

    @staticmethod
    def one(args: list, op: str) -> Any:
        if len(args) != 1:
            raise _bad(f"{op.upper()} takes one argument.")
        return args[0]

    @staticmethod
    def pair(args: list, op: str) -> tuple[Any, Any]:
        if len(args) != 2:
            raise _bad(f"{op.upper()} takes two arguments.")
        return args[0], args[1]


def compile_filter(tree: dict[str, Any], properties: dict[str, Any], geom_sql: str, crs: Crs) -> Compiled:
    """The SQL condition of a CQL2 JSON TREE over PROPERTIES (queryable name → Property)."""
    c = _Compiler(properties, geom_sql, crs)
    return Compiled(c.condition(tree), c.values)


def _show(node: Any) -> str:
    text = json.dumps(node, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
