"""Vulnerable sites, rescue teams and supply depots: three registry descriptions and what each adds.

- Vulnerable sites (承灾体): the people needing help to move are some of the people there.
- Rescue teams (救援队伍): `deployed` is read from the bookings the warning matching makes; a booked
  team cannot be set off duty or closed (409) until its order ends.
- Supply depots (物资储备库): stock is {item: quantity} over the catalogue (`GET /supply-items`); it
  cannot go below what live orders have reserved (409).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from psycopg import AsyncConnection
from pydantic import BaseModel

from gridrisk.api.deps import PoolDep, Reader
from gridrisk.api.responses import OrjsonResponse
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, InvalidInput
from gridrisk.models.response_resources import (
    HistoryEntry,
    RescueTeamCreate,
    RescueTeamPublic,
    RescueTeamUpdate,
    SupplyDepotCreate,
    SupplyDepotPublic,
    SupplyDepotUpdate,
    SupplyItem,
    VulnerableSiteCreate,
    VulnerableSitePublic,
    VulnerableSiteUpdate,
    persons_errors,
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
    RowProblem,
    district_name,
    split_list,
    text_search,
)
from gridrisk.vocabulary import (
    CAPABILITIES,
    DEPOT_LEVELS,
    SITE_STATUSES,
    TEAM_STATUSES,
    TEAM_TYPES,
    VULNERABLE_KINDS,
    Capability,
    DepotLevel,
    SiteStatus,
    TeamStatus,
    TeamType,
    VulnerableKind,
)

DistrictFilter = Annotated[str | None, Query(pattern=r"^\d{6}$", description="District code")]


def _district(alias: str) -> Filter:
    return Filter("district", DistrictFilter, f"{alias}.district_code = %(district)s")


def _from_row(v: dict[str, Any]) -> dict[str, Any]:
    """The shape GET returns reads back: the district as an object."""
    if "district_code" not in v and isinstance(v.get("district"), dict):
        v["district_code"] = v["district"].get("code")
    return v


# ---------------------------------------------------------------------------------------------
# Vulnerable sites


def _site_check(model: BaseModel) -> list[dict[str, str]]:
    return persons_errors(model.persons, model.persons_assisted)


async def _site_patch(conn: AsyncConnection, row: dict, body: BaseModel, sent: dict, cols: dict) -> None:
    persons = sent.get("persons", row["persons"])
    store.raise_problems(persons_errors(persons, sent.get("persons_assisted", row["persons_assisted"])))


VULNERABLE_SITES = FeatureKind(
    name="vulnerable_site",
    alias="v",
    models=Models(VulnerableSiteCreate, VulnerableSiteUpdate, VulnerableSitePublic, HistoryEntry),
    columns=(
        "code",
        "name",
        "kind",
        "persons",
        "persons_assisted",
        "contact_person",
        "contact_phone",
        "responsible_unit",
        "address",
        "district_code",
        "status",
    ),
    filters=(
        Filter("kind", VulnerableKind | None, "v.kind = %(kind)s"),
        Filter("status", SiteStatus | None, "v.status = %(status)s"),
        _district("v"),
        text_search(
            ("v.name", "v.code", "v.address", "v.responsible_unit"), "Text in name, code, address or unit"
        ),
    ),
    lookups=(DISTRICT,),
    geometry=GeometryRules(district=True),
    properties=(
        Property(
            "kind",
            "v.kind",
            "string",
            "Kind",
            enum=VULNERABLE_KINDS,
            queryable=True,
            tile="String: school, nursing_home, underpass, underground_garage, low_lying_block, ...",
        ),
        Property("persons", "v.persons", "integer", "People usually present", tile="Number: people present"),
        Property("persons_assisted", "v.persons_assisted", "integer", "Of them, needing help to move"),
        Property("status", "v.status", "string", "Status", enum=SITE_STATUSES, queryable=True, tile="String"),
        Property("contact_person", "v.contact_person", "string", "Contact person"),
        Property("contact_phone", "v.contact_phone", "string", "Contact phone"),
        Property("responsible_unit", "v.responsible_unit", "string", "Responsible unit", queryable=True),
        Property("address", "v.address", "string", "Address"),
        Property("district_code", "v.district_code", "string", "District code", queryable=True),
        district_name("v"),
    ),
    publish=Publish(
        title="Vulnerable sites (承灾体)",
        description="Schools, kindergartens, hospitals, nursing homes, underground spaces and garages, "
        "underpasses, tunnels, construction sites, low-lying blocks: the places warnings target beyond "
        "risk sources and hazard points, with the people there. Feature id: the site's integer id.",
        tile_description="Vulnerable sites with the people there.",
    ),
    bulk=Bulk(
        from_row=_from_row,
        notes="`kind`: school, kindergarten, hospital, nursing_home, ... (see "
        "the schema). The district defaults to the one the site lies in.",
    ),  # fmt: skip
    docs={
        "feature": "The site as a GeoJSON Feature: kind, people present and needing help to move, contact, "
        "responsible unit, district, and the open work orders of live warnings that target it.",
        "close": "Sets the status to closed: warnings no longer target it.",
    },
    extension=Extension(check=_site_check, patch=_site_patch),
)

# ---------------------------------------------------------------------------------------------
# Rescue teams

BOOKED = "EXISTS (SELECT 1 FROM work_order_teams b WHERE b.team_id = t.id AND b.released_at IS NULL)"
TEAM_STATUS = f"(CASE WHEN {BOOKED} THEN 'deployed' ELSE t.status END)"


def _team_row(v: dict[str, Any]) -> dict[str, Any]:
    """Capabilities and equipment in one cell (separated by ; | 、 or ，)."""
    for key in ("capabilities", "equipment"):
        if isinstance(v.get(key), str):
            v[key] = split_list(v[key])
    if v.get("status") == "deployed":
        raise RowProblem(
            "status", "`deployed` follows the team's bookings; give available, off_duty or closed."
        )
    return _from_row(v)


async def _booked(conn: AsyncConnection, team_id: int) -> dict | None:
    cur = await conn.execute(sql("rescue_team_booking"), {"id": team_id})
    return await cur.fetchone()


async def _refuse_if_booked(conn: AsyncConnection, row: dict, status: str) -> None:
    booking = await _booked(conn, row["id"])
    if booking is not None:
        raise Conflict(
            f"The team is deployed on work order {booking['order_id']} (warning {booking['warning_id']}); it "
            f"cannot be {status.replace('_', ' ')} until that order ends.",
            order_id=booking["order_id"],
            warning_id=booking["warning_id"],
        )


async def _team_patch(conn: AsyncConnection, row: dict, body: BaseModel, sent: dict, cols: dict) -> None:
    if sent.get("status") in ("off_duty", "closed"):
        await _refuse_if_booked(conn, row, sent["status"])


async def _team_close(conn: AsyncConnection, row: dict, who: str) -> None:
    from gridrisk.registry.store import close_row

    await _refuse_if_booked(conn, row, "closed")
    await close_row(conn, RESCUE_TEAMS, row["id"], who)


RESCUE_TEAMS = FeatureKind(
    name="rescue_team",
    alias="t",
    models=Models(RescueTeamCreate, RescueTeamUpdate, RescueTeamPublic, HistoryEntry),
    columns=(
        "code",
        "name",
        "team_type",
        "sector",
        "capabilities",
        "members",
        "equipment",
        "status",
        "contact_person",
        "contact_phone",
        "managing_unit",
        "address",
        "district_code",
    ),
    filters=(
        Filter("team_type", TeamType | None, "t.team_type = %(team_type)s"),
        Filter("capability", Capability | None, "%(capability)s = ANY(t.capabilities)"),
        Filter("status", TeamStatus | None, f"{TEAM_STATUS} = %(status)s"),
        _district("t"),
        text_search(
            ("t.name", "t.code", "t.sector", "t.managing_unit"), "Text in name, code, sector or unit"
        ),
    ),
    lookups=(DISTRICT,),
    geometry=GeometryRules(district=True),
    json_columns=("equipment",),
    properties=(
        Property(
            "team_type", "t.team_type", "string", "Type", enum=TEAM_TYPES, queryable=True, tile="String"
        ),
        Property("sector", "t.sector", "string", "Sector", queryable=True),
        Property(
            "capabilities",
            "array_to_string(t.capabilities, ',')",
            "string",
            "What it can do, comma-separated: " + ", ".join(CAPABILITIES),
            tile="String: capabilities, comma-separated",
        ),
        Property("members", "t.members", "integer", "Members", tile="Number: members"),
        Property(
            "status",
            TEAM_STATUS,
            "string",
            "available, deployed (booked), off_duty or closed",
            enum=TEAM_STATUSES,
            tile="String: available, deployed, off_duty or closed",
        ),  # fmt: skip
        Property("contact_person", "t.contact_person", "string", "Contact person"),
        Property("contact_phone", "t.contact_phone", "string", "Contact phone"),
        Property("managing_unit", "t.managing_unit", "string", "Managing unit", queryable=True),
        Property("district_code", "t.district_code", "string", "District code", queryable=True),
        district_name("t"),
    ),
    publish=Publish(
        title="Rescue teams (救援队伍)",
        description="Fire and rescue stations, full-time fire brigades, professional and social rescue teams "
        "with their capabilities, members and base; `deployed` while booked for a work order. Feature id: "
        "the team's integer id.",
        tile_description="Rescue teams at their bases, deployed or available.",
    ),
    bulk=Bulk(
        from_row=_team_row,
        notes="`capabilities` and `equipment`: several in one cell, separated by ; | 、 or ，. `status`: "
        "available, off_duty or closed (deployed follows the bookings). The district defaults to the one "
        "the base lies in.",
    ),
    docs={
        "feature": "The team as a GeoJSON Feature: type, sector, capabilities, members, equipment, status "
        "(`deployed` while booked, with `booking` naming the work order), contact, district.",
        "update": "Only the fields sent change. A deployed team cannot be set off duty or closed (409).",
        "close": "Sets the status to closed (it is no longer matched). Not while it is deployed (409).",
    },
    responses={
        "update": {409: {"description": "The team is deployed"}},
        "close": {409: {"description": "Deployed"}},
    },
    extension=Extension(patch=_team_patch, close=_team_close),
)

# ---------------------------------------------------------------------------------------------
# Supply depots


async def _check_stock(conn: AsyncConnection, stock: dict[str, int], depot_id: int | None) -> None:
    """422 for an item not in the catalogue; 409 for stock below what live orders reserved."""
    cur = await conn.execute(sql("supply_stock_check"), {"items": list(stock), "depot_id": depot_id,
                                                         "quantities": list(stock.values())})  # fmt: skip
    for row in await cur.fetchall():
        if row["unknown"]:
            raise InvalidInput(
                f"Unknown supply item '{row['item']}'. Known items: {row['known']}.",
                errors=[
                    {"field": f"stock.{row['item']}", "message": "not in the catalogue (GET /supply-items)"}
                ],
            )
        raise Conflict(
            f"{row['reserved']} of '{row['item']}' are reserved for live work orders; the stock cannot go "
            f"below that (asked: {row['quantity']}).",
            errors=[{"field": f"stock.{row['item']}", "message": "below the reserved quantity"}],
            reserved=row["reserved"],
        )


async def _depot_create(conn: AsyncConnection, body: BaseModel, cols: dict) -> None:
    await _check_stock(conn, body.stock, None)


async def _depot_patch(conn: AsyncConnection, row: dict, body: BaseModel, sent: dict, cols: dict) -> None:
    if "stock" in sent:
        await _check_stock(conn, sent["stock"], row["id"])


def _depot_row(v: dict[str, Any]) -> dict[str, Any]:
    """Stock in one cell as `tents:500; sandbags:20000` (or the object GET returns)."""
    stock = v.get("stock")
    if isinstance(stock, str):
        out: dict[str, Any] = {}
        for part in split_list(stock):
            item, sep, quantity = part.replace("：", ":").partition(":")
            if not sep:
                raise RowProblem("stock", f"'{part}' is not item:quantity (e.g. tents:500)")
            out[item.strip()] = quantity.strip()
        v["stock"] = out
    elif isinstance(stock, dict):  # read back from GET: {item: {quantity, ...}}
        v["stock"] = {k: (q["quantity"] if isinstance(q, dict) else q) for k, q in stock.items()}
    return _from_row(v)


SUPPLY_DEPOTS = FeatureKind(
    name="supply_depot",
    alias="w",
    models=Models(SupplyDepotCreate, SupplyDepotUpdate, SupplyDepotPublic, HistoryEntry),
    columns=(
        "code",
        "name",
        "level",
        "area_m2",
        "stock",
        "contact_person",
        "contact_phone",
        "managing_unit",
        "address",
        "district_code",
        "status",
    ),
    filters=(
        Filter("level", DepotLevel | None, "w.level = %(level)s"),
        Filter(
            "item",
            Annotated[
                str | None, Query(max_length=40, description="Holding some of this item (catalogue key)")
            ],
            "coalesce((w.stock ->> %(item)s)::int, 0) > 0",
        ),
        Filter("status", SiteStatus | None, "w.status = %(status)s"),
        _district("w"),
        text_search(
            ("w.name", "w.code", "w.address", "w.managing_unit"), "Text in name, code, address or unit"
        ),
    ),
    lookups=(DISTRICT,),
    geometry=GeometryRules(district=True),
    json_columns=("stock",),
    properties=(
        Property(
            "level",
            "w.level",
            "string",
            "city, district or street",
            enum=DEPOT_LEVELS,
            queryable=True,
            tile="String: city, district or street",
        ),  # fmt: skip
        Property("area_m2", "w.area_m2", "number", "Floor area, m²"),
        Property(
            "stock_items", "(SELECT count(*) FROM jsonb_object_keys(w.stock))::int", "integer", "Items held"
        ),
        Property("status", "w.status", "string", "Status", enum=SITE_STATUSES, queryable=True, tile="String"),
        Property("contact_person", "w.contact_person", "string", "Contact person"),
        Property("contact_phone", "w.contact_phone", "string", "Contact phone"),
        Property("managing_unit", "w.managing_unit", "string", "Managing unit", queryable=True),
        Property("district_code", "w.district_code", "string", "District code", queryable=True),
        district_name("w"),
    ),
    publish=Publish(
        title="Supply depots (物资储备库)",
        description="City, district and street relief-supply depots with their stock of the catalogue's "
        "items (the Feature's `stock`: held, reserved by live work orders, free). Feature id: the depot's "
        "integer id.",
        tile_description="Relief-supply depots.",
    ),
    bulk=Bulk(
        from_row=_depot_row,
        checks=("supply_depot_import_checks",),
        notes="`stock`: `item:quantity` pairs in one cell separated by ; (e.g. `tents:500; sandbags:20000`), "
        "items from GET /supply-items. The district defaults to the one the depot lies in.",
    ),
    docs={
        "feature": "The depot as a GeoJSON Feature: level, area, `stock` per item (name, unit, quantity, "
        "reserved by live work orders, free), contact, district.",
        "update": "Only the fields sent change; `stock` replaces the whole stock and cannot go below what "
        "live work orders have reserved (409).",
    },
    responses={"update": {409: {"description": "Stock below what is reserved"}}},
    extension=Extension(create=_depot_create, patch=_depot_patch, routes=APIRouter()),
)

router = SUPPLY_DEPOTS.extension.routes


@router.get("/supply-items", response_model=list[SupplyItem], summary="The supply catalogue: items and units")
async def supply_items(pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        cur = await conn.execute(sql("supply_items"))
        return OrjsonResponse(await cur.fetchall())
