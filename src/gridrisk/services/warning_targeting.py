"""Targeted warnings: resolve a warning's area, apply its messages, and diff its work orders.

A message (JSON, or CAP Alert / Update / Cancel) is applied in one transaction: the warning's row
is created or locked (the lock serialises concurrent re-posts of one warning), its fields updated,
its existing orders locked, and one set-based statement (db/sql/warning_target.sql) finds every
target in the area and creates, escalates, reopens or cancels orders so that they match. The
unique key (warning, target type, target id) backs the lock: no interleaving can duplicate an order.
Nothing here runs a query per target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from gridrisk.db.sql_files import sql
from gridrisk.models.warnings import AreaSpec, WarningSpec
from gridrisk.services.warning_matching import match_orders

NO_COUNTS = {"created": 0, "escalated": 0, "reopened": 0, "cancelled": 0, "targets": 0}
# The planner's cost estimate for the targeting statement passes the JIT threshold; compiling it
# would take longer than running it. Custom plans: each run's warning has its own area.
_SESSION = "SELECT set_config('jit', 'off', true), set_config('plan_cache_mode', 'force_custom_plan', true)"
# The diff and the cancellation join CTEs to work_orders. While work_orders' statistics say "no
# rows" (a new table, or one analysed when nearly empty) the planner puts work_orders on the outer
# side of a nested loop and rescans a 9,000-row CTE once per order: 100 s measured for a city-wide
# re-post. Hash joins are right at every size here; the lateral lookups (cells, nearest shelter)
# and the spatial index join stay nested loops, the only way they can run, and have no joins inside.
_NO_NESTLOOP = "SET LOCAL enable_nestloop = off"
_NESTLOOP_DEFAULT = "SET LOCAL enable_nestloop TO DEFAULT"


class WarningInputError(ValueError):
    """The message cannot be applied as sent: FIELD names what is wrong (a 422 for the API)."""

    def __init__(self, field: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.extra = extra


class WarningConflict(Exception):
    """The message conflicts with the warning's state (cancelled, or older than what is stored)."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class WarningNotFound(LookupError):
    pass


class WarningStale(Exception):
    """The caller's If-Match names an older version of the warning."""

    def __init__(self, current: int) -> None:
        super().__init__(f"the warning is at version {current}")
        self.current = current


@dataclass
class Area:
    """A resolved warning area: one valid MultiPolygon (hex EWKB) and how it was given."""

    geom: str
    spec: dict[str, Any]
    km2: float
    districts: list[str] | None = None  # the districts it is made of, when made of nothing else


@dataclass
class Outcome:
    """What applying one message did."""

    warning_id: int
    created: bool
    applied: bool
    message: str
    note: str | None = None
    changes: dict[str, list[Any]] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=lambda: dict(NO_COUNTS))
    seconds: float = 0.0

    def result(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "applied": self.applied,
            "note": self.note,
            "message": self.message,
            "changes": self.changes,
            # The targeting's counts, then what the matching booked (warning_matching.py).
            "orders": {k: v for k, v in self.orders.items() if k != "matching"},
            "matching": self.orders.get("matching", {}),
            "seconds": round(self.seconds, 4),
        }


# ---------------------------------------------------------------------------------------------
# The area


async def resolve_area(conn: AsyncConnection, area: AreaSpec) -> Area:
    """Check every part of AREA and union them into one MultiPolygon; nothing is written.

    Raises WarningInputError for a malformed, empty, invalid (with PostGIS's reason) or
    out-of-city area, an unknown layer, district or cell.
    """
    if area.cells:
        cur = await conn.execute("SELECT 1 FROM layers WHERE name = %s", (area.layer,))
        if await cur.fetchone() is None:
            raise WarningInputError("area.layer", f"Unknown layer '{area.layer}'; see GET /layers.")
    for i, part in enumerate(area.polygons):
        where = area.field if len(area.polygons) == 1 else f"{area.field}[{i}]"
        try:
            cur = await conn.execute(sql("warning_area_part"), {"geometry": part})
            row = await cur.fetchone()
        except psycopg.Error as exc:
            first = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
            raise WarningInputError(where, f"The area is not well-formed GeoJSON: {first}.") from exc
        if row["type"] not in ("POLYGON", "MULTIPOLYGON"):
            raise WarningInputError(where, f"The area must be a Polygon or MultiPolygon, not {row['type']}.")
        if row["empty"]:
            raise WarningInputError(where, "The area is empty.")
        if not row["valid"]:
            raise WarningInputError(
                where, f"The area is not a valid polygon: {row['reason']}.", reason=row["reason"]
            )
    cur = await conn.execute(
        sql("warning_area_union"),
        {
            "polygons": area.polygons,
            "districts": area.districts,
            "layer": area.layer,
            "cells": area.cells,
            "geocodes": area.geocodes,
        },
    )
    row = await cur.fetchone()
    if row["unknown_districts"]:
        names = ", ".join(row["unknown_districts"])
        raise WarningInputError("area.districts", f"Unknown district(s): {names}; see GET /districts.")
    if row["unknown_cells"]:
        unknown = row["unknown_cells"]
        shown = ", ".join(unknown[:20]) + (f" and {len(unknown) - 20} more" if len(unknown) > 20 else "")
        raise WarningInputError("area.cells", f"No cell(s) {shown} in layer '{area.layer}'.")
    if row["empty"]:
        hint = ""
        if row["ignored_geocodes"]:
            hint = f" (geocodes {', '.join(row['ignored_geocodes'])} are neither a district nor the city)"
        raise WarningInputError(area.field, f"The area is empty{hint}.")
    if not row["inside"]:
        raise WarningInputError(
            area.field, "The area lies outside the city; check the coordinates (WGS 84, lon/lat order)."
        )
    spec = dict(area.spec)
    if row["ignored_geocodes"]:
        spec["ignored_geocodes"] = row["ignored_geocodes"]
    return Area(geom=row["area"], spec=spec, km2=row["area_km2"], districts=row["only_districts"] or None)


def check_window(spec: WarningSpec, now: datetime | None = None) -> None:
    """An expired or inverted validity window orders nobody anywhere: refuse it up front."""
    now = now or datetime.now(UTC)
    if spec.valid_from is not None and spec.valid_until is not None and spec.valid_until <= spec.valid_from:
        raise WarningInputError("valid_until", "valid_until must be after valid_from.")
    if spec.valid_until is not None and spec.valid_until <= now:
        raise WarningInputError(
            "valid_until", f"The warning expired at {spec.valid_until.isoformat()}; it would order nothing."
        )


# ---------------------------------------------------------------------------------------------
# Applying messages


async def _find(conn: AsyncConnection, spec: WarningSpec) -> int | None:
    """The warning this message belongs to: by its own identifier, else by those it references."""
    ids = [spec.identifier, *spec.references]
    cur = await conn.execute(
        "SELECT warning_id FROM warning_messages WHERE identifier = ANY(%s)"
        " ORDER BY (identifier = %s) DESC, sent DESC LIMIT 1",
        (ids, spec.identifier),
    )
    row = await cur.fetchone()
    return row["warning_id"] if row else None


async def _record_message(
    conn: AsyncConnection, warning_id: int, spec: WarningSpec, sent: datetime, who: str
):
    await conn.execute(
        "INSERT INTO warning_messages (identifier, warning_id, msg_type, sent, by)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (identifier) DO NOTHING",
        (spec.identifier, warning_id, spec.msg_type, sent, who),
    )


async def _on_locked_orders(conn: AsyncConnection, name: str, params: dict[str, Any]) -> dict[str, Any]:
    """Lock the warning's orders (id order), then run statement NAME over them without nested loops."""
    await conn.execute(
        "SELECT 1 FROM work_orders WHERE warning_id = %s ORDER BY id FOR UPDATE", (params["warning_id"],)
    )
    await conn.execute(_NO_NESTLOOP)
    cur = await conn.execute(sql(name), params)
    row = await cur.fetchone()
    await conn.execute(_NESTLOOP_DEFAULT)
    return row


async def _target(conn: AsyncConnection, warning_id: int, who: str) -> dict[str, int]:
    """Diff the warning's orders against its targets in one statement, then book what they need."""
    orders = dict(await _on_locked_orders(conn, "warning_target", {"warning_id": warning_id, "who": who}))
    orders["matching"] = await match_orders(conn, warning_id)
    return orders


async def _affected_cells(conn: AsyncConnection, warning_id: int, area: Area) -> None:
    await conn.execute(sql("warning_affected_cells"), {"warning_id": warning_id, "districts": area.districts})


async def _history(
    conn: AsyncConnection,
    warning_id: int,
    who: str,
    op: str,
    message: str | None,
    changes: dict,
    orders: dict,
) -> None:
    await conn.execute(
        "INSERT INTO warning_history (warning_id, version, by, op, message, changes, orders)"
        " SELECT id, version, %s, %s, %s, %s, %s FROM warnings WHERE id = %s",
        (who, op, message, Jsonb(changes), Jsonb(orders), warning_id),
    )


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


async def apply_warning(conn: AsyncConnection, spec: WarningSpec, area: Area, who: str) -> Outcome:
    """Create or update the warning SPEC describes and bring its work orders in line, atomically."""
    check_window(spec)
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(_SESSION)
        warning_id = await _find(conn, spec)
        sent = spec.sent or datetime.now(UTC)
        cols = {
            "hazard_type": spec.hazard_type,
            "level": spec.level,
            "valid_from": spec.valid_from,
            "valid_until": spec.valid_until,
            "headline": spec.headline,
            "description": spec.description,
            "instruction": spec.instruction,
            "sender": spec.sender,
        }
        if warning_id is None:
            cur = await conn.execute(
                sql("warning_insert"),
                {
                    **cols,
                    "identifier": spec.identifier,
                    "sent": sent,
                    "area": area.geom,
                    "area_spec": Jsonb(area.spec),
                    "source": spec.source,
                    "who": who,
                },
            )
            row = await cur.fetchone()
            if row is not None:
                warning_id = row["id"]
                await _record_message(conn, warning_id, spec, sent, who)
                orders = await _target(conn, warning_id, who)
                await _affected_cells(conn, warning_id, area)
                await _history(conn, warning_id, who, "create", spec.identifier, {}, orders)
                return Outcome(
                    warning_id,
                    True,
                    True,
                    spec.identifier,
                    orders=orders,
                    seconds=time.perf_counter() - started,
                )
            # A concurrent post of the same new identifier committed first: update what it created.
            cur = await conn.execute("SELECT id FROM warnings WHERE identifier = %s", (spec.identifier,))
            warning_id = (await cur.fetchone())["id"]
        outcome = await _update(conn, warning_id, spec, area, cols, sent, who)
    outcome.seconds = time.perf_counter() - started
    return outcome


async def _update(
    conn: AsyncConnection,
    warning_id: int,
    spec: WarningSpec,
    area: Area,
    cols: dict,
    sent: datetime,
    who: str,
) -> Outcome:
    cur = await conn.execute(
        "SELECT id, status, sent, last_message, hazard_type, level, valid_from, valid_until, headline,"
        " description, instruction, sender, area_spec, ST_OrderingEquals(area, %s::geometry) AS same_area"
        " FROM warnings WHERE id = %s FOR UPDATE",
        (area.geom, warning_id),
    )
    row = await cur.fetchone()
    # Read after the lock: a concurrent post of this very message may have just committed.
    cur = await conn.execute("SELECT 1 FROM warning_messages WHERE identifier = %s", (spec.identifier,))
    known = await cur.fetchone() is not None
    if row["status"] == "cancelled":
        raise WarningConflict(
            f"Warning {row['id']} ('{row['last_message']}') was cancelled; a new warning needs a new "
            "identifier.",
            warning_id=row["id"],
        )
    if known and spec.identifier != row["last_message"]:
        return Outcome(
            warning_id,
            False,
            False,
            spec.identifier,
            note=f"Message '{spec.identifier}' was superseded by '{row['last_message']}'; nothing changed.",
        )
    if not known and spec.sent is not None and spec.sent < row["sent"]:
        raise WarningConflict(
            f"This message was sent at {spec.sent.isoformat()}, before the warning's current state "
            f"({row['sent'].isoformat()}, message '{row['last_message']}'); it is not applied.",
            warning_id=row["id"],
        )
    changes = {k: [_jsonable(row[k]), _jsonable(v)] for k, v in cols.items() if row[k] != v}
    if not row["same_area"]:
        changes["area"] = [row["area_spec"], area.spec]
    await conn.execute(
        sql("warning_update"),
        {
            **cols,
            "area": area.geom,
            "area_spec": Jsonb(area.spec),
            "sent": sent,
            "message": spec.identifier,
            "bump": 1 if changes else 0,
            "who": who,
            "id": warning_id,
        },
    )
    await _record_message(conn, warning_id, spec, sent, who)
    orders = await _target(conn, warning_id, who)
    if "area" in changes:
        await _affected_cells(conn, warning_id, area)
    booked = orders["matching"]
    touched = any(orders[k] for k in ("created", "escalated", "reopened", "cancelled")) or any(
        booked[k] for k in ("teams_booked", "persons_placed", "supply_lines_reserved")
    )
    if changes or touched:
        await _history(
            conn, warning_id, who, "update" if changes else "repost", spec.identifier, changes, orders
        )
    return Outcome(
        warning_id, False, bool(changes or touched), spec.identifier, changes=changes, orders=orders
    )


async def cancel_warning(
    conn: AsyncConnection,
    who: str,
    *,
    warning_id: int | None = None,
    spec: WarningSpec | None = None,
    reason: str | None = None,
    expected_version: int | None = None,
) -> Outcome:
    """End a warning (by id, or by a CAP Cancel naming it): its unfinished orders are cancelled."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(_SESSION)
        if warning_id is None:
            assert spec is not None
            warning_id = await _find(conn, spec)
            if warning_id is None:
                raise WarningInputError(
                    "references",
                    "The Cancel message names no known warning (neither its identifier nor its references).",
                )
        cur = await conn.execute(
            "SELECT id, status, version, last_message FROM warnings WHERE id = %s FOR UPDATE", (warning_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise WarningNotFound(f"No warning with id {warning_id}.")
        if expected_version is not None and expected_version != row["version"]:
            raise WarningStale(row["version"])
        message = spec.identifier if spec else None
        if spec is not None:
            await _record_message(conn, warning_id, spec, spec.sent or datetime.now(UTC), who)
        if row["status"] == "cancelled":
            return Outcome(
                warning_id,
                False,
                False,
                message or row["last_message"],
                note="The warning was already cancelled.",
            )
        reason = reason or (spec.note if spec else None) or "Cancelled by the issuer."
        await conn.execute(
            "UPDATE warnings SET status = 'cancelled', cancelled_at = now(), cancel_reason = %s,"
            " last_message = coalesce(%s, last_message), version = version + 1, updated_at = now(),"
            " updated_by = %s WHERE id = %s",
            (reason, message, who, warning_id),
        )
        params = {"warning_id": warning_id, "who": who, "reason": reason}
        cancelled = (await _on_locked_orders(conn, "warning_cancel_orders", params))["cancelled"]
        orders = {**NO_COUNTS, "cancelled": cancelled}
        changes = {"status": ["active", "cancelled"]}
        await _history(conn, warning_id, who, "cancel", message, changes, orders)
    return Outcome(
        warning_id,
        False,
        True,
        message or row["last_message"],
        changes=changes,
        orders=orders,
        seconds=time.perf_counter() - started,
    )
