"""A warning's closed loop as figures: per city, district and cell, as JSON or as a CSV for Excel."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import orjson
from psycopg import AsyncConnection

from gridrisk.db.sql_files import sql

FIGURES = (
    "orders",
    "open",
    "acknowledged",
    "in_progress",
    "done",
    "cancelled",
    "overdue",
    "ack_p50_min",
    "ack_p90_min",
    "done_p50_min",
    "done_p90_min",
    "persons_planned",
    "persons_evacuated",
    "persons_placed",
    "persons_without_place",
    "teams_committed",
    "teams_deployed",
    "supply_units",
)
# The CSV's header as people read it (Chinese first: the report goes to the duty office as is).
CSV_HEADER = {
    "scope": "范围 scope",
    "code": "编码 code",
    "name": "名称 name",
    "orders": "工单 orders",
    "open": "待接收 open",
    "acknowledged": "已接收 acknowledged",
    "in_progress": "处置中 in_progress",
    "done": "已办结 done",
    "cancelled": "已撤销 cancelled",
    "overdue": "超时 overdue",
    "ack_p50_min": "接收用时中位数(分) ack_p50_min",
    "ack_p90_min": "接收用时P90(分) ack_p90_min",
    "done_p50_min": "办结用时中位数(分) done_p50_min",
    "done_p90_min": "办结用时P90(分) done_p90_min",
    "persons_planned": "计划转移人数 persons_planned",
    "persons_evacuated": "已转移人数 persons_evacuated",
    "persons_placed": "已预留安置 persons_placed",
    "persons_without_place": "无安置人数 persons_without_place",
    "teams_committed": "调派队伍 teams_committed",
    "teams_deployed": "在岗队伍 teams_deployed",
    "supply_units": "调拨物资(件) supply_units",
}


async def warning_report(conn: AsyncConnection, warning_id: int, head: dict[str, Any]) -> dict[str, Any]:
    """The report: the warning's HEAD fields, then the city, districts and cells, and what was committed."""
    cur = await conn.execute(sql("warning_report"), {"warning_id": warning_id})
    rows = await cur.fetchall()
    cur = await conn.execute(sql("warning_report_resources"), {"warning_id": warning_id})
    resources = orjson.loads((await cur.fetchone())["body"])

    def scope(r: dict) -> dict[str, Any]:
        code = r["cell_code"] if r["scope"] == "cell" else r["district_code"]
        out = {"code": code, "name": r["name"]}
        if r["scope"] == "cell":
            out["district_code"] = r["district_code"]
        return {**out, **{k: _plain(r[k]) for k in FIGURES}}

    city = next((scope(r) for r in rows if r["scope"] == "city"), {k: 0 for k in FIGURES})
    return {
        "warning": head,
        "generated_at": datetime.now(UTC).isoformat(),
        "city": city,
        "districts": [scope(r) for r in rows if r["scope"] == "district"],
        "cells": [scope(r) for r in rows if r["scope"] == "cell"],
        **resources,
    }


def report_csv(report: dict[str, Any]) -> bytes:
    """The report's scopes as CSV rows (UTF-8 with a BOM, so Excel shows the Chinese as written)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER.values())
    for scope, rows in (
        ("city", [report["city"]]),
        ("district", report["districts"]),
        ("cell", report["cells"]),
    ):
        for r in rows:
            writer.writerow(
                [scope, r.get("code") or "", r.get("name") or "", *(_cell(r.get(k)) for k in FIGURES)]
            )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _plain(value: Any) -> Any:
    """Decimals from the database as JSON numbers."""
    return float(value) if value is not None and not isinstance(value, int | float) else value


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
