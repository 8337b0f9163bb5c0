"""The description of a feature kind: what a registry is, stated once, from which the rest derives.

A `FeatureKind` names a registry's URL path, table, history, pydantic models, feature SQL, search
filters, geometry rules, reference lookups, publishing (OGC collection, vector-tile layer) and bulk
import. `registry.routes` derives the HTTP API from it (CRUD with If-Match, soft close, history,
search with bbox/cell/filters and paging links, `POST <path>/import`), `registry.bulk` the bulk import,
`registry.cli` the `gridrisk <path> import` command, `ogc.collections` and `tiles.mvt` the collection
and the tile layer. What a kind does beyond that is an `Extension`: a few named functions of its module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from functools import cache, cached_property
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel

JsonType = Literal["string", "integer", "number", "boolean"]


@dataclass(frozen=True)
class Property:
    """One published property of a kind's features: its SQL expression and JSON type.

    OGC API – Features serves every property (`queryable` ones filter as `?name=value`); the vector
    tiles carry those with a `tile` description (their tile SQL selects the same columns).
    """

    name: str
    sql: str
    type: JsonType
    description: str
    format: str | None = None
    enum: tuple[str, ...] | None = None
    queryable: bool = False
    # True when the expression reads the collection's joined table (counts skip the join otherwise).
    joined: bool = False
    tile: str | None = None  # the TileJSON field description; None: not in the tiles

    def schema(self) -> dict[str, Any]:
        """The property as a JSON Schema fragment (also valid as an OpenAPI 3.0 schema)."""
        out: dict[str, Any] = {"type": self.type, "title": self.name, "description": self.description}
        if self.format:
            out["format"] = self.format
        if self.enum:
            out["enum"] = list(self.enum)
        return out


@dataclass(frozen=True)
class Filter:
    """A search query parameter and the SQL condition it adds when given.

    `annotation` is the parameter's type with its `Query(...)` metadata; `sql` reads the value as
    `%(key)s` (None: the kind's search extension reads it instead); `cast` is its SQL type.
    """

    key: str
    annotation: Any
    sql: str | None
    cast: str = "text"
    like: bool = False  # text search: the value is matched as %value%

    @property
    def condition(self) -> str:
        return f"(%({self.key})s::{self.cast} IS NULL OR {self.sql})"


def text_search(columns: tuple[str, ...], description: str) -> Filter:
    """`q`: text found (case-insensitively) in any of COLUMNS."""
    from fastapi import Query

    return Filter(
        "q",
        Annotated[str | None, Query(min_length=1, max_length=100, description=description)],
        "(" + " OR ".join(f"{c} ILIKE %(q)s" for c in columns) + ")",
        like=True,
    )


@dataclass(frozen=True)
class Lookup:
    """A field whose value must be a key of a reference table: otherwise a 422 naming the field."""

    field: str  # the column (and the field errors name)
    table: str
    key: str
    noun: str  # "category": the message says "Unknown category 'x'"
    known: str | None = None  # "categories": the message lists the known values; None: `hint` instead
    hint: str = ""
    where: str = "true"  # which rows of TABLE count (a constant condition)

    def problem(self, value: Any, known: str | None) -> tuple[str, str]:
        """(detail, short message) for an unknown VALUE."""
        if self.known:
            return (
                f"Unknown {self.noun} '{value}'. Known {self.known}: {known}.",
                f"unknown {self.noun.split()[-1]}; one of {known}",
            )
        return f"Unknown {self.noun} '{value}'; {self.hint}.", f"unknown {self.noun}"


@dataclass(frozen=True)
class GeometryRules:
    """Where a kind's features may lie and what follows from it."""

    types: tuple[str, ...] = ("Point", "Polygon", "MultiPolygon")  # as published (the model checks input)
    inside_city: bool = True  # a geometry must touch the city (a swapped lon/lat lands far away)
    district: bool = False  # district_code from the geometry (its point on surface) when not given

    @property
    def tile_geometry(self) -> str:
        """What a tile layer of these holds, for TileJSON: point | polygon | point, polygon."""
        kinds = dict.fromkeys("point" if t == "Point" else "polygon" for t in self.types)
        return ", ".join(kinds)


DISTRICT = Lookup(
    "district_code",
    "cells",
    "code",
    "district",
    hint="see GET /districts for the codes",
    where="layer = 'district'",
)


def district_name(alias: str) -> Property:
    if alias == "d":  # the subquery names the districts `d`: the kind's own alias would be shadowed
        raise ValueError("a kind whose properties read district_name() needs an alias other than 'd'")
    return Property(
        "district_name",
        f"(SELECT d.name FROM cells d WHERE d.layer = 'district' AND d.code = {alias}.district_code)",
        "string",
        "District name",
    )


@dataclass(frozen=True)
class Publish:
    """The kind's OGC API collection and vector-tile layer (their properties are the kind's)."""

    title: str
    description: str  # the OGC collection's description
    tile_description: str
    minzoom: int = 0
    maxzoom: int = 16
    updated: str = "Last change"  # what `updated_at` (the temporal property) means here
    # Following from the kind unless given: its table's name, (noun, "registry"), tile_<table>.
    collection: str = ""  # the OGC collection id and the tile collection id
    keywords: tuple[str, ...] = ()
    tile_sql: str = ""  # db/sql/<tile_sql>.sql renders one tile


@dataclass(frozen=True)
class Bulk:
    """How rows of a file become the kind's Create model, and what the import adds in SQL.

    Files name the model's fields as columns (CSV) or properties (GeoJSON, GeoPackage); `aliases`
    adds other names. `from_row` turns a row's values into the Create model's input (e.g. flat
    columns into nested objects). SQL files (run on the temporary table `import_stage`): `derive`
    fill columns before the checks, `checks` return (row_no, field, problem, value) rows, `upsert`
    replaces the derived INSERT ... ON CONFLICT (code) and returns (inserted, updated).
    `from_row` may raise `RowProblem(field, problem)` for a row it cannot read.
    """

    required: tuple[str, ...] = ()  # default: the columns the Create model requires
    optional: tuple[str, ...] = ()  # default: the kind's other columns
    aliases: dict[str, str] = field(default_factory=dict)
    from_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    derive: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    upsert: str | None = None
    keep: tuple[str, ...] = ()  # columns set for new features only: an update keeps the registered value
    rename: dict[str, str] = field(default_factory=dict)  # model field → the file column its errors name
    notes: str = ""  # what the import's description adds for this kind


Conn = Any  # an AsyncConnection (routes) or a Connection (bulk import)


@dataclass(frozen=True)
class Extension:
    """What a kind does beyond the derived registry: named functions of the kind's module.

    - `check(model)`: cross-field checks of a Create model, [{field, message}] (API: 422; import: row errors).
    - `columns(model, cols)`: the columns a Create model gives beyond its plain fields (API and import).
    - `create(conn, body, cols)`: database-side derivations before the INSERT.
    - `patch(conn, row, body, sent, cols)`: the same for a PATCH, with the locked row.
    - `refuse_patch(item_id, sent)`: a 422 for fields PATCH does not take (before If-Match).
    - `close(conn, row, who)`: replaces the soft close (`status = 'closed'`).
    - `search(conn, params, cell_id)`: answers a search itself (a Response) or returns None.
    - `routes`: an APIRouter with the kind's own routes, included before the `{id}` routes.
    """

    check: Callable[[BaseModel], list[dict[str, str]]] | None = None
    columns: Callable[[BaseModel, dict[str, Any]], None] | None = None
    create: Callable[[Conn, BaseModel, dict[str, Any]], Awaitable[None]] | None = None
    patch: Callable[[Conn, dict, BaseModel, dict, dict[str, Any]], Awaitable[None]] | None = None
    refuse_patch: Callable[[int, dict], None] | None = None
    close: Callable[[Conn, dict, str], Awaitable[None]] | None = None
    search: Callable[[Conn, dict[str, Any], int | None], Awaitable[Any]] | None = None
    routes: Any = None  # a fastapi.APIRouter


class Models(NamedTuple):
    """A kind's pydantic models: POST body, PATCH body, the GeoJSON Feature, one history entry."""

    create: type[BaseModel]
    update: type[BaseModel]
    public: type[BaseModel]
    history_entry: type[BaseModel]


@dataclass(frozen=True, eq=False)  # hashed by identity: statements are cached per kind
class FeatureKind:
    """One registry of located features (risk sources, shelters, hazard points, ...)."""

    name: str  # singular, snake case: "risk_source"; the names below follow from it unless given
    alias: str  # the table's alias in the kind's SQL ("s")
    models: Models
    columns: tuple[str, ...]  # the table columns a write sets (geometry aside), as the import stages them
    filters: tuple[Filter, ...]
    properties: tuple[Property, ...]  # what the kind publishes beyond code, name, version, updated_at
    publish: Publish
    bulk: Bulk = field(default_factory=Bulk)
    lookups: tuple[Lookup, ...] = ()
    unique: tuple[str, ...] = ("code",)  # unique columns: the first is the upsert key
    cells: tuple[str, str] | None = None  # (table, feature column) assigning features to cells
    geometry: GeometryRules = field(default_factory=GeometryRules)
    json_columns: tuple[str, ...] = ()
    history_sql: str | None = None  # db/sql/<name>.sql replacing the derived history query (%(id)s)
    docs: dict[str, str] = field(default_factory=dict)  # route descriptions: create, update, close, ...
    responses: dict[str, dict] = field(default_factory=dict)  # extra documented responses per route
    extension: Extension = field(default_factory=Extension)
    # Names that follow from `name` ("risk_source") unless given:
    noun: str = ""  # "risk source"
    plural: str = ""  # "risk sources" (also the OpenAPI tag)
    path: str = ""  # "/risk-sources"
    table: str = ""  # "risk_sources"
    id_param: str = ""  # the path parameter and the history's column: "risk_source_id"
    history_table: str = ""  # "risk_source_history"
    history_key: str = ""  # the history table's column naming the feature (default: id_param)
    feature_sql: str = ""  # db/sql/<name>.sql: (id, version, feature text) for %(ids)s, in order

    def __post_init__(self) -> None:
        noun = self.noun or self.name.replace("_", " ")
        plural = self.plural or noun + "s"
        id_param = self.id_param or f"{self.name}_id"
        derived = {
            "noun": noun,
            "plural": plural,
            "path": self.path or "/" + plural.replace(" ", "-"),
            "table": self.table or plural.replace(" ", "_"),
            "id_param": id_param,
            "history_table": self.history_table or f"{self.name}_history",
            "history_key": self.history_key or id_param,
            "feature_sql": self.feature_sql or f"{self.name}_feature",
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)
        p, table = self.publish, derived["table"]
        publish = replace(
            p,
            collection=p.collection or table,
            keywords=p.keywords or (noun, "registry"),
            tile_sql=p.tile_sql or f"tile_{table}",
        )
        object.__setattr__(self, "publish", publish)

    @cached_property
    def published(self) -> tuple[Property, ...]:
        """Every published property: code and name, the kind's own `properties`, version and updated_at."""
        a, etag = self.alias, f"Record version (the ETag of {self.path}/{{id}})"
        return (
            Property("code", f"{a}.code", "string", "Registration code", queryable=True),
            Property("name", f"{a}.name", "string", "Name", queryable=True),
            *self.properties,
            Property("version", f"{a}.version", "integer", etag),
            Property(
                "updated_at",
                f"{a}.updated_at",
                "string",
                f"{self.publish.updated} (what `datetime` filters)",
                format="date-time",
            ),
        )

    @property
    def colours_cells(self) -> bool:
        """Whether the kind's features colour the four-colour map (the cells they lie in)."""
        return self.cells is not None

    @property
    def key(self) -> str:
        """The column imports upsert by."""
        return self.unique[0]

    @cached_property
    def fields(self) -> frozenset[str]:
        """The Create model's field names as files and JSON spell them (aliases)."""
        return frozenset(f.alias or n for n, f in self.models.create.model_fields.items())

    @cached_property
    def file_columns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, optional) file columns: `Bulk`'s, else the Create model's required ones and the rest."""
        required = self.bulk.required or tuple(
            (f.alias or n)
            for n, f in self.models.create.model_fields.items()
            if f.is_required() and (f.alias or n) in self.columns
        )
        optional = self.bulk.optional or tuple(c for c in self.columns if c not in required)
        return required, optional

    @cached_property
    def plain(self) -> tuple[str, ...]:
        """The columns taken as they are from a model field of the same name."""
        return tuple(c for c in self.columns if c in self.fields)

    def prop(self, name: str) -> Property:
        return next(p for p in self.published if p.name == name)

    def columns_of(self, model: BaseModel) -> dict[str, Any]:
        """The table columns a Create model gives: its plain fields, then what the kind derives."""
        given = model.__dict__
        cols = {c: given[a] for c, a in _plain_attributes(self, type(model))}
        if self.extension.columns is not None:
            self.extension.columns(model, cols)
        return cols


def split_list(text: str) -> list[str]:
    """Several values in one cell of a file, separated by ; | 、 or ，, as a list (blanks dropped)."""
    for sep in ("|", "、", "，"):
        text = text.replace(sep, ";")
    return [p.strip() for p in text.split(";") if p.strip()]


class RowProblem(ValueError):
    """A row a kind's `Bulk.from_row` cannot read: the field and what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field, self.problem = field, problem


@cache
def _plain_attributes(kind: FeatureKind, model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """(column, the model's attribute) for the kind's plain columns (a field's alias names its column)."""
    attribute = {(f.alias or n): n for n, f in model.model_fields.items()}
    return tuple((c, attribute[c]) for c in kind.plain)
