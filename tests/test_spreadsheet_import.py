"""Registers as Excel workbooks: every registry imports .xlsx with the CSV's checks and report."""

from __future__ import annotations

import csv
import io

import openpyxl
import psycopg
import pytest
from conftest import assert_problem, bearer
from test_risk_source_import import inner_points

# Three rows per kind: numbers typed as numbers in the workbook, text as text.
ROWS = {
    "/risk-sources": [
        dict(code="X-1", name="储罐区", category="hazardous_chemicals", method="LEC", L=6, E=6, C=15),
        dict(code="X-2", name="中山路加油站", category="gas", method="LS", L=4, S=4),
        dict(code="X-3", name="有限空间作业点", category="confined_space", method="direct", level="orange",
             reason="区应急管理局认定"),
    ],
    "/shelters": [
        {"code": "S-1", "name": "玄武门广场", "class": "emergency", "capacity": 800},
        {"code": "S-2", "name": "月牙湖公园", "class": "fixed", "effective_area_m2": 5000},
        {"code": "S-3", "name": "中学操场", "class": "emergency", "capacity": 1200, "status": "standby"},
    ],
    "/hazard-points": [
        dict(code="H-1", name="低洼积水点", kind="waterlogging", level="orange", threatened_persons=120),
        dict(code="H-2", name="危房", kind="dangerous_building", level="red", threatened_persons=35),
        dict(code="H-3", name="边坡", kind="landslide", level="yellow", property_value=1.5),
    ],
}  # fmt: skip
# One bad value per row, of each sort: an unknown enum value, a number out of range, a missing name.
BAD = {
    "/risk-sources": [("category", "volcano"), ("L", 70), ("name", None)],
    "/shelters": [("class", "tent"), ("capacity", -5), ("name", None)],
    "/hazard-points": [("kind", "meteor"), ("threatened_persons", -1), ("name", None)],
}


def _rows(path: str, url: str, bad: bool = False) -> list[dict]:
    rows = [dict(r) for r in ROWS[path]]
    for r, (x, y) in zip(rows, inner_points(url, len(rows)), strict=True):
        r.update(lon=x, lat=y)
    if bad:
        for r, (field, value) in zip(rows, BAD[path], strict=True):
            r[field] = value
    return rows


def _columns(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def _csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue().encode()


def _xlsx(rows: list[dict], *, title_rows: int = 0) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    if title_rows:  # as registers come: a title, a date line, then the header
        sheet.append(["南京市登记台账"])
        for _ in range(title_rows - 1):
            sheet.append(["制表日期", "2026-12-06"])
    columns = _columns(rows)
    sheet.append(columns)
    for r in rows:
        sheet.append([r.get(c) for c in columns])
    sheet.append([])  # formatting below the data: empty rows are not rows
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _upload(client, key, path: str, content: bytes, filename: str, **form):
    files = {"file": (filename, io.BytesIO(content), "application/octet-stream")}
    return client.post(f"{path}/import", headers=bearer(key), files=files, data=form)


def _count(url: str, path: str) -> int:
    table = path.strip("/").replace("-", "_")
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.mark.parametrize("path", list(ROWS))
def test_a_workbook_imports_as_its_csv_does(city_client, city_db_url, city_keys, path):
    key = city_keys["operator"]
    before = _count(city_db_url, path)
    rows = _rows(path, city_db_url)
    as_csv = _upload(city_client, key, path, _csv(rows), "register.csv", dry_run="true")
    assert as_csv.status_code == 200, as_csv.text
    r = _upload(city_client, key, path, _xlsx(rows, title_rows=2), "登记台账.xlsx")
    assert r.status_code == 200, r.text
    assert {**r.json(), "dry_run": True, "seconds": 0} == {**as_csv.json(), "seconds": 0}
    assert r.json()["inserted"] == 3 and _count(city_db_url, path) == before + 3
    table = path.strip("/").replace("-", "_")
    with psycopg.connect(city_db_url) as conn:
        stored = {
            r[0]["code"]: r[0]
            for r in conn.execute(f"SELECT to_jsonb(t) - 'geom' FROM {table} t WHERE code LIKE '_-_'")
        }
    for row in rows:  # typed cells arrived as the values the CSV gives
        got = stored[row["code"]]
        for field, value in row.items():
            if field in got:
                assert got[field] == value, (field, got[field], value)


@pytest.mark.parametrize("path", list(ROWS))
def test_a_bad_workbook_gets_the_csvs_report_with_excel_row_numbers(
    city_client, city_db_url, city_keys, path
):
    key = city_keys["operator"]
    before = _count(city_db_url, path)
    rows = _rows(path, city_db_url, bad=True)
    from_csv = assert_problem(_upload(city_client, key, path, _csv(rows), "register.csv"), 422)["report"]
    from_xlsx = assert_problem(_upload(city_client, key, path, _xlsx(rows, title_rows=2), "r.xlsx"), 422)
    report = from_xlsx["report"]
    assert len(report["errors"]) == 3
    for a, b in zip(from_csv["errors"], report["errors"], strict=True):
        assert (a["row"], a["field"], a["problem"]) == (b["row"], b["field"], b["problem"])
        assert b["line"] == a["line"] + 2  # its Excel row: two title rows above the header
    assert _count(city_db_url, path) == before


def test_unreadable_workbooks_and_sniffing(city_client, city_db_url, city_keys):
    key = city_keys["operator"]
    body = assert_problem(_upload(city_client, key, "/shelters", b"PK\x03\x04 not a zip", "a.xlsx"), 422)
    assert "not a readable Excel workbook" in body["report"]["errors"][0]["problem"]
    empty = openpyxl.Workbook()
    out = io.BytesIO()
    empty.save(out)
    body = assert_problem(_upload(city_client, key, "/shelters", out.getvalue(), "a.xlsx"), 422)
    assert body["report"]["errors"][0]["problem"] == "The sheet is empty; it needs a header row."
    no_header = _xlsx([{"code": "S-9", "名称": "x", "lon": 118.8, "lat": 32.05}])
    body = assert_problem(_upload(city_client, key, "/shelters", no_header, "a.xlsx"), 422)
    assert (
        body["report"]["errors"][0]["field"] == "header"
        and "name, class" in body["report"]["errors"][0]["problem"]
    )
    # No name to go by (the CLI's bytes): the zip signature says Excel.
    from gridrisk.registry.bulk import import_file
    from gridrisk.registry.catalog import KINDS

    rows = _rows("/shelters", city_db_url)
    with psycopg.connect(city_db_url) as conn:
        result = import_file(conn, KINDS["shelter"], _xlsx(rows), actor="test")
    assert result.ok and result.inserted == 3
