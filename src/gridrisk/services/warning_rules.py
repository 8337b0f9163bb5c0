"""The targeting rules: read them, and change the due times or one hazard's rules (each recorded)."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import AsyncConnection

from gridrisk.db.sql_files import sql
from gridrisk.errors import InvalidInput
from gridrisk.models.warnings import ACTION_TEXT, HAZARD_TYPES, RuleTarget
from gridrisk.services.records import fetch_all
from gridrisk.vocabulary import HAZARD_KINDS, VULNERABLE_KINDS

LEVELS = ("blue", "yellow", "orange", "red")


async def rules(conn: AsyncConnection) -> dict[str, Any]:
    """The due time per level, the action texts, and per hazard the targets it exposes."""
    due = {r["level"]: r["due_minutes"] for r in await fetch_all(conn, "warning_due_times")}
    hazards: dict[str, list] = {h: [] for h in HAZARD_TYPES}
    for r in await fetch_all(conn, "warning_rules"):
        hazards[r["hazard_type"]].append(
            {
                "type": r["target_type"],
                "kind": r["target_kind"],
                "actions": {lvl: r[f"action_{lvl}"] for lvl in LEVELS},
            }
        )
    return {
        "due_minutes": {lvl: due[lvl] for lvl in ("red", "orange", "yellow", "blue")},
        "actions": ACTION_TEXT,
        "hazards": hazards,
    }


async def _record_change(
    conn: AsyncConnection, by: str, subject: str, old: Any, new: Any, reason: str | None
) -> None:
    await conn.execute(
        sql("warning_rule_change"),
        {
            "by": by,
            "subject": subject,
            "old": orjson.dumps(old, default=str).decode(),
            "new": orjson.dumps(new).decode(),
            "reason": reason,
        },
    )


async def set_due_times(conn: AsyncConnection, new: dict[str, int], reason: str | None, by: str) -> dict:
    """Lock, set and record the due times (minutes per level), in one transaction; the rules after."""
    async with conn.transaction():
        old = {r["level"]: r["due_minutes"] for r in await fetch_all(conn, "warning_due_times_lock")}
        await conn.execute(
            sql("warning_due_times_update"), {"by": by, "levels": list(new), "minutes": list(new.values())}
        )
        await _record_change(conn, by, "due_times", old, new, reason)
        return await rules(conn)


def _check_unique(targets: list[RuleTarget]) -> None:
    """422 when a kind of target appears twice."""
    seen: set[tuple[str, str]] = set()
    for i, t in enumerate(targets):
        if (t.type, t.kind) in seen:
            raise InvalidInput(
                f"{t.type} '{t.kind}' appears twice.",
                errors=[{"field": f"targets.{i}.kind", "message": "duplicate"}],
            )
        seen.add((t.type, t.kind))


async def _check_known(conn: AsyncConnection, targets: list[RuleTarget]) -> None:
    """422 when a kind is not one of its type's: a risk-source category, hazard-point or site kind."""
    categories = {r["code"] for r in await fetch_all(conn, "warning_rule_categories")}
    kinds = {
        "risk_source": categories,
        "hazard_point": set(HAZARD_KINDS),
        "vulnerable_site": set(VULNERABLE_KINDS),
    }
    for i, t in enumerate(targets):
        known = kinds[t.type]
        if t.kind not in known:
            what = t.type.replace("_", " ")
            raise InvalidInput(
                f"'{t.kind}' is not a {what} kind; known: {', '.join(sorted(known))}.",
                errors=[{"field": f"targets.{i}.kind", "message": "unknown kind"}],
            )


async def replace_hazard_rules(
    conn: AsyncConnection, hazard_type: str, targets: list[RuleTarget], reason: str | None, by: str
) -> dict:
    """Check, lock, replace and record one hazard's rules, in one transaction; the rules after."""
    _check_unique(targets)
    async with conn.transaction():
        await _check_known(conn, targets)
        old = await fetch_all(conn, "warning_rules_lock", {"hazard_type": hazard_type})
        await conn.execute(sql("warning_rules_delete"), {"hazard_type": hazard_type})
        if targets:
            async with conn.cursor() as cur:
                await cur.executemany(
                    sql("warning_rule_insert"),
                    [
                        {
                            "hazard_type": hazard_type,
                            "target_type": t.type,
                            "target_kind": t.kind,
                            "blue": t.actions.blue,
                            "yellow": t.actions.yellow,
                            "orange": t.actions.orange,
                            "red": t.actions.red,
                            "by": by,
                        }
                        for t in targets
                    ],
                )
        new = [t.model_dump() for t in targets]
        await _record_change(conn, by, f"rules:{hazard_type}", old, new, reason)
        return await rules(conn)
