"""Risk sources (风险源): the registry's description, and what it adds: the assessment and the past map.

- Assessment: LEC (L, E, C), LS (L, S) or direct (level + reason), with an optional override; the
  columns come from the model here, the score and the level are computed by the database (the
  BEFORE trigger reads the thresholds table).
- `?at=` with `layer` and `cell`: the cell's sources as they were at that moment (from the history).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query
from psycopg import AsyncConnection

from gridrisk.api.geojson import feature_collection
from gridrisk.db.sql_files import sql
from gridrisk.errors import InvalidInput
from gridrisk.models.risk_sources import (
    DirectAssessment,
    HistoryEntry,
    Level,
    RiskSourceCreate,
    RiskSourcePublic,
    RiskSourceUpdate,
    Status,
)
from gridrisk.registry.kind import (
    Bulk,
    Extension,
    FeatureKind,
    Filter,
    Lookup,
    Models,
    Property,
    Publish,
    RowProblem,
    text_search,
)
from gridrisk.vocabulary import LEVELS, METHODS, SOURCE_STATUSES


def assessment_columns(assessment, override) -> dict[str, Any]:
    """Columns for an assessment; the score and level are left to the database to compute."""
    method = assessment.method
    if method == "LEC":
        cols = {"method": method, "l": assessment.L, "e": assessment.E, "c": assessment.C, "s": None}
    elif method == "LS":
        cols = {"method": method, "l": assessment.L, "e": None, "c": None, "s": assessment.S}
    else:
        cols = {"method": method, "l": None, "e": None, "c": None, "s": None}
    if isinstance(assessment, DirectAssessment):
        cols["override_level"], cols["override_reason"] = assessment.level, assessment.reason
    elif override is not None:
        cols["override_level"], cols["override_reason"] = override.level, override.reason
    else:
        cols["override_level"] = cols["override_reason"] = None
    return cols


def _columns(model: RiskSourceCreate, cols: dict[str, Any]) -> None:
    cols.update(assessment_columns(model.assessment, model.override))


async def _patch(conn: AsyncConnection, row: dict, body: RiskSourceUpdate, sent: dict, cols: dict) -> None:
    """A new assessment replaces the old (with the override sent); an override alone keeps the method."""
    if "assessment" in sent and body.assessment is not None:
        cols.update(assessment_columns(body.assessment, body.override))
    elif "override" in sent:
        if row["method"] == "direct":
            raise InvalidInput(
                "This source is assessed directly; change its assessment instead of overriding it.",
                errors=[{"field": "override", "message": "not applicable to a direct assessment"}],
            )
        cols["override_level"] = body.override.level if body.override else None
        cols["override_reason"] = body.override.reason if body.override else None


async def _as_of(conn: AsyncConnection, filters: dict[str, Any], cell_id: int | None):
    """With `at` (and a cell): the cell's sources as they were then, as a FeatureCollection."""
    if filters.get("at") is None:
        return None
    if cell_id is None:
        raise InvalidInput(
            "`at` needs `layer` and `cell`: the history is read per cell.",
            errors=[{"field": "at", "message": "needs layer and cell"}],
        )
    cur = await conn.execute(sql("risk_sources_at"), {"at": filters["at"], "cell_id": cell_id})
    rows = await cur.fetchall()
    body = "[" + ",".join(r["feature"] for r in rows) + "]"
    return feature_collection(body, extra=b'"numberMatched":%d,"numberReturned":%d,' % (len(rows), len(rows)))


_PLAIN = (
    "code",
    "name",
    "category",
    "address",
    "plate_code",
    "enterprise",
    "department",
    "persons",
    "status",
)
_TAKEN_AS_IS = frozenset(_PLAIN)
_METHOD_NAMES = {"lec": "LEC", "ls": "LS", "direct": "direct"}
_NO_ASSESSMENT = (
    "The assessment is missing: give the method with L, E, C (LEC), L and S (LS), or a level and a reason "
    "(direct)."
)


def _from_row(v: dict[str, Any]) -> dict[str, Any]:
    """Flat columns (method, L, E, C, S, level, reason) or the exported shape → RiskSourceCreate's input."""
    out = {k: x for k, x in v.items() if k in _TAKEN_AS_IS}
    given = v.get("assessment")
    if isinstance(given, dict):  # what GET returns: `level` is the result, an input only when direct
        method, nums = given.get("method"), {k: given[k] for k in "LECS" if given.get(k) is not None}
        override = v.get("override") if isinstance(v.get("override"), dict) else {}
        level, reason = (
            (v.get("level"), v.get("reason"))
            if method == "direct"
            else (override.get("level"), override.get("reason"))
        )
    else:
        method, nums = v.get("method"), {k: v[k] for k in "LECS" if k in v}
        level, reason = v.get("level"), v.get("reason")
    if method is None:  # no method column: inferred from the values given
        if "E" in nums or "C" in nums:
            method = "LEC"
        elif "S" in nums:
            method = "LS"
        elif level is not None and "L" not in nums:
            method = "direct"
        else:
            raise RowProblem("method", _NO_ASSESSMENT)
    method = _METHOD_NAMES.get(str(method).lower(), method)
    said = {}
    if level is not None:
        said["level"] = level
    if reason is not None:
        said["reason"] = reason
    if method == "direct":
        out["assessment"] = {"method": method, **said}
        return out
    keys = "LEC" if method == "LEC" else "LS" if method == "LS" else "LECS"
    nums["method"] = method
    out["assessment"] = {k: nums[k] for k in ("method", *keys) if k in nums}
    if said:  # with LEC or LS, a level overrides the computed one (and says why)
        out["override"] = said
    return out


RISK_SOURCES = FeatureKind(
    name="risk_source",
    alias="s",
    id_param="source_id",
    models=Models(RiskSourceCreate, RiskSourceUpdate, RiskSourcePublic, HistoryEntry),
    columns=(*_PLAIN[:-1], "method", "l", "e", "c", "s", "override_level", "override_reason", "status"),
    filters=(
        Filter("category", Annotated[str | None, Query(max_length=64)], "s.category = %(category)s"),
        Filter("level", Level | None, "s.level = %(level)s"),
        Filter("status", Status | None, "s.status = %(status)s"),
        text_search(("s.name", "s.code", "s.address", "s.enterprise"), "Text in name/code/address"),
        Filter(
            "at",
            Annotated[datetime | None, Query(description="With layer+cell: the sources as of this moment")],
            None,
        ),
    ),
    lookups=(Lookup("category", "risk_categories", "code", "category", known="categories"),),
    unique=("code", "plate_code"),
    cells=("source_cells", "source_id"),
    properties=(
        Property(
            "category",
            "s.category",
            "string",
            "Category code (see risk_categories)",
            queryable=True,
            tile="String: category code",
        ),
        Property(
            "level",
            "s.level",
            "string",
            "Level in force",
            enum=LEVELS,
            queryable=True,
            tile="String: risk level in force (red, orange, yellow, blue)",
        ),
        Property(
            "computed_level",
            "s.computed_level",
            "string",
            "Level from the assessment",
            enum=LEVELS,
            queryable=True,
        ),
        Property("method", "s.method", "string", "Assessment method", enum=METHODS, queryable=True),
        Property("score", "s.score", "number", "Assessment score (D = L×E×C or R = L×S)"),
        Property(
            "status",
            "s.status",
            "string",
            "Status",
            enum=SOURCE_STATUSES,
            queryable=True,
            tile="String: active, suspended or closed",
        ),
        Property("address", "s.address", "string", "Address"),
        Property("plate_code", "s.plate_code", "string", "Address plate code", queryable=True),
        Property("enterprise", "s.enterprise", "string", "Enterprise", queryable=True),
        Property("department", "s.department", "string", "Supervising department", queryable=True),
        Property("persons", "s.persons", "integer", "People usually on site", queryable=True),
    ),
    publish=Publish(
        title="Risk sources (风险源)",
        description="Every registered risk source with its category, assessment and level (the "
        "override when one is set). Feature id: the source's integer id.",
        tile_description="Registered risk sources, every status (style or filter on `status`).",
        minzoom=8,
    ),
    bulk=Bulk(
        optional=(
            "address",
            "plate_code",
            "enterprise",
            "department",
            "method",
            "L",
            "E",
            "C",
            "S",
            "level",
            "reason",
            "status",
        ),
        aliases={"override_level": "level", "override_reason": "reason"},
        from_row=_from_row,
        rename={"assessment": "method"},
        notes="`method` is LEC, LS or direct (inferred from the values when left out); with LEC or LS, "
        "`level` and `reason` record an override.",
    ),
    docs={
        "feature": "The risk source",
        "conflict": "The code or plate is already registered",
        "search": "Search risk sources (GeoJSON, paged); with layer+cell+at, the cell's sources as they were",
    },
    extension=Extension(columns=_columns, patch=_patch, search=_as_of),
)
