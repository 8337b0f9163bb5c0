"""Hazard points (隐患点): the registry's description, and what it adds: the lifecycle and statistics.

- Lifecycle: identified → monitoring → remediating → remediated (or closed), through
  `POST /hazard-points/{id}/transitions` (If-Match; 409 lists the allowed next states); PATCH does not
  take the status, closing is the transition to `closed`, and an import sets the status of new
  points only. Remediated and closed points stop counting on the four-colour map.
- `GET /hazard-points/stats`: counts by kind, status and level and the remediation rate.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from psycopg import AsyncConnection

from gridrisk.api.deps import PoolDep, Reader, Writer
from gridrisk.api.etags import parse_if_match
from gridrisk.api.geojson import raw_json
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, InvalidInput, NotFound
from gridrisk.models.hazard_points import (
    PROPERTY_VALUE_DOC,
    REOPEN_FROM,
    TRANSITIONS,
    HazardPointCreate,
    HazardPointPublic,
    HazardPointUpdate,
    HazardStats,
    HistoryEntry,
    Kind,
    Level,
    Status,
    Transition,
)
from gridrisk.registry import store
from gridrisk.registry.kind import (
    DISTRICT,
    Bulk,
    Extension,
    FeatureKind,
    Filter,
    GeometryRules,
    Models,
    Property,
    Publish,
    district_name,
    text_search,
)
from gridrisk.vocabulary import HAZARD_KINDS, HAZARD_STATUSES, LEVELS

STALE = "Stale If-Match: the hazard point changed since it was read (current ETag returned)"
TRANSITION_DOC = "; ".join(f"{src} → {', '.join(dst)}" for src, dst in TRANSITIONS.items())
FEATURE_DOC = (
    "The hazard point as a GeoJSON Feature. `property_value` is in 10,000 yuan (万元); `cells` maps each "
    "layer to the codes of the cells it lies in; `status_dates` holds when each status was entered; "
    "`on_map` says whether it counts on the four-colour map."
)


def _refuse_status(hazard_id: int, sent: dict) -> None:
    if "status" in sent:
        raise InvalidInput(
            f"The status moves through POST /hazard-points/{hazard_id}/transitions (with a note), "
            "not through PATCH.",
            errors=[{"field": "status", "message": "use the transitions endpoint"}],
        )


async def _transition(
    conn: AsyncConnection, row: dict, to: str, note: str | None, by: str | None, who: str
) -> None:
    """Apply one status change, or raise 409 naming the states allowed from here."""
    current = row["status"]
    allowed = list(TRANSITIONS[current])
    if to not in allowed:
        raise Conflict(
            f"A hazard point cannot go from '{current}' to '{to}'. From '{current}' it may go to: "
            f"{', '.join(allowed)}.",
            current=current,
            requested=to,
            allowed=allowed,
        )
    if to == "identified" and current in REOPEN_FROM and not note:
        raise InvalidInput(
            "Reopening a hazard point needs a note saying why (e.g. the hazard recurred after heavy rain).",
            errors=[{"field": "note", "message": "required to reopen"}],
        )
    # One UPDATE: the BEFORE trigger stamps status_dates[to], the AFTER triggers recolour the
    # cells (a remediated point stops counting) and write the history row annotated next.
    await conn.execute(sql("hazard_transition"), {"to": to, "who": who, "id": row["id"]})
    await conn.execute(
        sql("hazard_transition_note"),
        {"id": row["id"], "version": row["version"] + 1, "note": note, "by": by},
    )


async def _close(conn: AsyncConnection, row: dict, who: str) -> None:
    await _transition(conn, row, "closed", None, None, who)


def _from_row(v: dict[str, Any]) -> dict[str, Any]:
    """The shape GET returns reads back: the district as an object."""
    if "district_code" not in v and isinstance(v.get("district"), dict):
        v["district_code"] = v["district"].get("code")
    return v


router = APIRouter()


@router.get(
    "/hazard-points/stats",
    response_model=HazardStats,
    summary="Counts by kind, status and level and the remediation rate: the city first, then per district",
    description="The remediation rate is remediated ÷ (total − closed). `district` narrows the district "
    "list; the city totals are always city-wide.",
)
async def hazard_stats(
    pool: PoolDep,
    _: Reader,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="Only this district")] = None,
):
    async with pool.connection() as conn:
        if district is not None and not await store.is_district(conn, district):
            raise NotFound(f"No district '{district}'.")
        cur = await conn.execute(sql("hazard_stats"), {"district": district})
        body = (await cur.fetchone())["stats"]
    return raw_json(body, media_type="application/json")


@router.post(
    "/hazard-points/{hazard_id}/transitions",
    summary="Move a hazard point through its lifecycle (If-Match); the map follows before this answers",
    description="Allowed transitions: "
    + TRANSITION_DOC
    + ". Moving to identified from remediated or closed is a reopen and needs a `note`. Any other move "
    "is a 409 whose `allowed` member lists the states reachable from the current one. The date each "
    "status is entered is stamped in `status_dates`; the note and `by` are kept in the history. "
    "Remediated and closed points stop counting on the four-colour map.",
    responses={
        200: {
            "description": FEATURE_DOC,
            "model": HazardPointPublic,
            "content": {"application/geo+json": {}},
        },
        412: {"description": STALE},
        428: {"description": "If-Match missing"},
        409: {"description": "Not allowed from the current status; `allowed` lists the next states"},
    },
)
async def transition_hazard_point(
    hazard_id: int,
    body: Transition,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header(description="ETag of the version you read")] = None,
):
    expected = parse_if_match(if_match, required=True)
    async with pool.connection() as conn, conn.transaction():
        row = await store.lock(conn, HAZARD_POINTS, hazard_id, expected)
        await _transition(conn, row, body.to, body.note, body.by, who.name)
        return await store.feature_response(conn, HAZARD_POINTS, hazard_id)


HAZARD_POINTS = FeatureKind(
    name="hazard_point",
    alias="h",
    id_param="hazard_id",
    models=Models(HazardPointCreate, HazardPointUpdate, HazardPointPublic, HistoryEntry),
    columns=(
        "code",
        "name",
        "kind",
        "level",
        "threatened_persons",
        "property_value",
        "status",
        "responsible_person",
        "responsible_unit",
        "notes",
        "address",
        "district_code",
    ),
    filters=(
        Filter("kind", Kind | None, "h.kind = %(kind)s"),
        Filter("status", Status | None, "h.status = %(status)s"),
        Filter("level", Level | None, "h.level = %(level)s"),
        Filter(
            "district",
            Annotated[str | None, Query(pattern=r"^\d{6}$", description="District code")],
            "h.district_code = %(district)s",
        ),
        text_search(
            ("h.name", "h.code", "h.address", "h.responsible_person", "h.responsible_unit"),
            "Text in name, code, address or responsible person/unit",
        ),
    ),
    lookups=(DISTRICT,),
    cells=("hazard_cells", "hazard_id"),
    geometry=GeometryRules(district=True),
    history_sql="hazard_history",
    properties=(
        Property(
            "kind",
            "h.kind",
            "string",
            "Kind",
            enum=HAZARD_KINDS,
            queryable=True,
            tile="String: landslide, collapse, waterlogging, ...",
        ),
        Property(
            "level",
            "h.level",
            "string",
            "Level",
            enum=LEVELS,
            queryable=True,
            tile="String: risk level (red, orange, yellow, blue)",
        ),
        Property(
            "status",
            "h.status",
            "string",
            "Lifecycle status",
            enum=HAZARD_STATUSES,
            queryable=True,
            tile="String: identified, monitoring, remediating, remediated or closed",
        ),
        Property(
            "on_map",
            "(h.status NOT IN ('remediated', 'closed'))",
            "boolean",
            "Counts in the four-colour map (not remediated or closed)",
        ),
        Property(
            "threatened_persons",
            "h.threatened_persons",
            "integer",
            "People threatened",
            tile="Number: people threatened",
        ),
        Property("property_value", "h.property_value", "number", "Property threatened, 10,000 yuan"),
        Property("address", "h.address", "string", "Address"),
        Property("district_code", "h.district_code", "string", "District code", queryable=True),
        district_name("h"),
        Property("responsible_unit", "h.responsible_unit", "string", "Responsible unit", queryable=True),
        Property("responsible_person", "h.responsible_person", "string", "Responsible person"),
    ),
    publish=Publish(
        title="Hazard points (隐患点)",
        description="Geological hazard points, waterlogging points and dangerous buildings with their "
        "level and remediation status. Feature id: the hazard point's integer id.",
        tile_description="Geological and urban hazard points with their remediation status.",
    ),
    bulk=Bulk(
        from_row=_from_row,
        keep=("status",),
        notes=f"`property_value`: {PROPERTY_VALUE_DOC}. `status` is the initial state of a new point "
        "(identified by default); a registered point's status changes only through its transitions. The "
        "district defaults to the one the point lies in.",
    ),
    docs={
        "feature": FEATURE_DOC,
        "create": f"`property_value`: {PROPERTY_VALUE_DOC}. `district_code` is derived from the geometry "
        "(the district holding the point) when not given. `status` is the initial state (default identified; "
        "register an existing point as it stands); later changes go through the transitions endpoint.",
        "update": "Only the fields sent change. The status is not patched: use "
        "POST /hazard-points/{id}/transitions. A new geometry re-derives the district unless "
        "`district_code` is sent too.",
        "close": "The same as the transition to `closed`; closing a closed point changes nothing.",
        "history": "Every version of a hazard point: who, when, what changed; transitions with their note",
    },
    extension=Extension(refuse_patch=_refuse_status, close=_close, routes=router),
)
