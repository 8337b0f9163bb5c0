"""Assessment thresholds: read them per method, and change one method's (recorded, map recoloured)."""

from __future__ import annotations

from typing import Any

import orjson
from psycopg import AsyncConnection

from gridrisk.db.sql_files import sql
from gridrisk.services.records import fetch_all

LEVELS = ("red", "orange", "yellow")


async def thresholds(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every method's thresholds by level, with the latest update's time and author."""
    out: dict[str, dict[str, Any]] = {}
    for r in await fetch_all(conn, "risk_map_thresholds"):
        entry = out.setdefault(r["method"], {"method": r["method"], "updated_at": r["updated_at"]})
        entry[r["level"]] = {"min_score": r["min_score"], "min_inclusive": r["min_inclusive"]}
        if r["updated_at"] >= entry["updated_at"]:
            entry["updated_at"], entry["updated_by"] = r["updated_at"], r["updated_by"]
    return list(out.values())


async def change_thresholds(
    conn: AsyncConnection, method: str, new: dict[str, dict[str, Any]], reason: str, by: str
) -> None:
    """Lock, record and set METHOD's thresholds, then re-assess its sources: one transaction."""
    async with conn.transaction():
        old = {
            r["level"]: {"min_score": r["min_score"], "min_inclusive": r["min_inclusive"]}
            for r in await fetch_all(conn, "risk_map_thresholds_lock", {"method": method})
        }
        await conn.execute(
            sql("risk_map_threshold_change"),
            {
                "by": by,
                "method": method,
                "old": orjson.dumps(old).decode(),
                "new": orjson.dumps(new).decode(),
                "reason": reason,
            },
        )
        for level, t in new.items():
            await conn.execute(
                sql("risk_map_threshold_update"),
                {
                    "method": method,
                    "level": level,
                    "min_score": t["min_score"],
                    "min_inclusive": t["min_inclusive"],
                    "by": by,
                },
            )
        # In this same transaction: every source re-assessed, the cells that changed recoloured.
        await conn.execute(sql("risk_map_reassess"), {"method": method})
