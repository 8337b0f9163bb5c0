"""Write a layer's cells atomically, keep codes stable, and recompute the crosswalk (overlay)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import orjson
import psycopg
import shapely
from psycopg import sql as pgsql

from gridrisk.db.sql_files import sql

ADMIN_LAYERS = ("district", "street", "community")
GRID_LAYERS = ("comprehensive", "emergency", "safety")
# Overlaps below this many m² are edge noise (the district outlines overlap by slivers of a
# fraction of a m²), not real overlap.
OVERLAY_NOISE_M2 = 1.0

Progress = Callable[[str, int, int], None]


@dataclass
class LayerWriteResult:
    """What a layer write did, for the CLI, the API and the import record."""

    layer: str
    cells: int
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    overlaps: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "cells": self.cells,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "overlaps": self.overlaps,
            "seconds": round(self.seconds, 3),
        }


def layer_exists(conn: psycopg.Connection, layer: str) -> bool:
    """True when LAYER is one of the configured layers."""
    return conn.execute("SELECT 1 FROM layers WHERE name = %s", (layer,)).fetchone() is not None


def write_layer(
    conn: psycopg.Connection,
    layer: str,
    gdf: gpd.GeoDataFrame,
    *,
    source: str | None = None,
    progress: Progress | None = None,
) -> LayerWriteResult:
    """Replace LAYER's cells with GDF inside the caller's transaction, upserting by code.

    GDF needs columns code, name, geometry (EPSG:4326) and may have name_en, population,
    district_code and props. Cells whose code vanished are deleted (their workers with them);
    every other attachment keyed by code survives. The caller owns the transaction.
    """
    started = time.perf_counter()
    report = progress or (lambda *_: None)
    # Serialise writers of the same layer: the second import waits, then sees the first's result.
    conn.execute("SELECT 1 FROM layers WHERE name = %s FOR UPDATE", (layer,))
    before = {r[0] for r in conn.execute("SELECT code FROM cells WHERE layer = %s", (layer,)).fetchall()}
    # Several layers may be written in one transaction: the staging table is per write.
    conn.execute("DROP TABLE IF EXISTS layer_stage")
    conn.execute(sql("layer_stage_create"))
    total = len(gdf)
    _copy_stage(conn, gdf, lambda done: report(f"staging {layer}", done, total))
    deleted = conn.execute(sql("layer_delete_missing"), {"layer": layer}).rowcount
    report(f"writing {layer}", 0, 1)
    srid = metric_srid(conn)
    conn.execute(sql("layer_apply"), {"layer": layer, "srid": srid})
    conn.execute(sql("layer_pieces"), {"layer": layer})
    report(f"writing {layer}", 1, 1)
    if layer == "district":
        conn.execute(sql("city_outline_rebuild"))
        # District cells are their own district.
        conn.execute("UPDATE cells SET district_code = code WHERE layer = 'district'")
    conn.execute("DROP TABLE layer_stage")
    overlaps = recompute_overlay(conn, layer, srid, progress=report)
    # New geometry: reassign every risk source to this layer's cells and recolour them.
    report(f"risk map {layer}", 0, 1)
    # Fresh statistics first: the reassignment's anti-join against the links planned with counts
    # from before the previous import (autovacuum had not caught up) as a nested loop over 30,000
    # × 30,000 rows, and the first re-import after a load took 60 s instead of 4 (BENCHMARKS.md).
    _analyze_links(conn)
    conn.execute("SELECT risk_refresh_layer(%s)", (layer,))
    report(f"risk map {layer}", 1, 1)
    conn.execute(
        "UPDATE layers SET version = version + 1, imported_at = now(), source = %s WHERE name = %s",
        (source, layer),
    )
    codes = set(gdf["code"].astype(str))
    return LayerWriteResult(
        layer=layer,
        cells=total,
        inserted=len(codes - before),
        updated=len(codes & before),
        deleted=deleted,
        overlaps=overlaps,
        seconds=time.perf_counter() - started,
    )


def _analyze_links(conn: psycopg.Connection) -> None:
    """ANALYZE the item-to-cell link tables (about 50 ms for 125,000 links), in the caller's transaction."""
    for (links,) in conn.execute("SELECT links FROM map_item_tables() ORDER BY links").fetchall():
        conn.execute(pgsql.SQL("ANALYZE {}").format(pgsql.Identifier(links)))


def _copy_stage(conn: psycopg.Connection, gdf: gpd.GeoDataFrame, tick: Callable[[int], None]) -> None:
    """Stream the rows into the staging table with COPY (fast for tens of thousands of cells)."""
    wkbs = shapely.to_wkb(gdf.geometry.values, include_srid=False)
    cols = gdf.columns
    names = gdf["name"] if "name" in cols else gdf["code"]
    step = max(1, len(gdf) // 50)
    with conn.cursor().copy(
        "COPY layer_stage (code, name, name_en, population, district_code, props, wkb) FROM STDIN"
    ) as copy:
        for i, (code, name) in enumerate(zip(gdf["code"], names, strict=True)):
            copy.write_row(
                (
                    str(code),
                    str(name) if name is not None else str(code),
                    _opt_str(gdf, "name_en", i),
                    _opt_int(gdf, "population", i),
                    _opt_str(gdf, "district_code", i),
                    orjson.dumps(gdf["props"].iloc[i] if "props" in cols else {}).decode(),
                    wkbs[i],
                )
            )
            if i % step == 0:
                tick(i)
    tick(len(gdf))


def _opt_str(gdf: gpd.GeoDataFrame, col: str, i: int) -> str | None:
    if col not in gdf.columns:
        return None
    v = gdf[col].iloc[i]
    return None if v is None or v != v else str(v)  # v != v is NaN


def _opt_int(gdf: gpd.GeoDataFrame, col: str, i: int) -> int | None:
    if col not in gdf.columns:
        return None
    v = gdf[col].iloc[i]
    return None if v is None or v != v else int(v)


def populated_layers(conn: psycopg.Connection) -> list[str]:
    """The layers that currently have cells."""
    rows = conn.execute("SELECT DISTINCT layer FROM cells ORDER BY layer").fetchall()
    return [r[0] for r in rows]


def metric_srid(conn: psycopg.Connection) -> int:
    """The EPSG code of the city's metric CRS (city_profile), in which every area is measured."""
    return conn.execute("SELECT metric_srid FROM city_profile").fetchone()[0]


def recompute_overlay(
    conn: psycopg.Connection, layer: str, srid: int, *, progress: Progress | None = None
) -> dict[str, int]:
    """Rebuild the crosswalk between LAYER and every other populated layer; return pair counts."""
    report = progress or (lambda *_: None)
    conn.execute("DELETE FROM cell_overlaps WHERE layer = %s OR other_layer = %s", (layer, layer))
    others = [other for other in populated_layers(conn) if other != layer]
    counts: dict[str, int] = {}
    for i, other in enumerate(others):
        report(f"overlay {layer}", i, len(others))
        counts[other] = _overlay_pair(conn, layer, other, srid)
    report(f"overlay {layer}", len(others), len(others))
    _assign_admin_codes(conn, layer, others)
    return counts


def remeasure_layers(
    conn: psycopg.Connection, srid: int, *, skip: str | None = None, progress: Progress | None = None
) -> None:
    """Every cell's area and the whole crosswalk again in a new metric CRS (pairs with SKIP excepted).

    Layer versions move on, so caches of areas and shares (tiles, the lookup index) reload.
    """
    report = progress or (lambda *_: None)
    conn.execute(sql("cells_remeasure"), {"srid": srid})
    layers = [layer for layer in populated_layers(conn) if layer != skip]
    pairs = [(a, b) for i, a in enumerate(layers) for b in layers[i + 1 :]]
    conn.execute(
        "DELETE FROM cell_overlaps WHERE layer = ANY(%(l)s) AND other_layer = ANY(%(l)s)", {"l": layers}
    )
    for i, (a, b) in enumerate(pairs):
        report("re-measuring the crosswalk", i, len(pairs))
        _overlay_pair(conn, a, b, srid)
    report("re-measuring the crosswalk", len(pairs), len(pairs))
    for admin in ADMIN_LAYERS:
        if admin in layers:
            _assign_admin_codes(conn, admin, [other for other in layers if other != admin])
    conn.execute("UPDATE layers SET version = version + 1 WHERE name = ANY(%s)", (populated_layers(conn),))


def _overlay_pair(conn: psycopg.Connection, a: str, b: str, srid: int) -> int:
    """The crosswalk rows between layers A and B (both directions); returns the number of cell pairs."""
    cur = conn.execute(sql("overlay_pair"), {"a": a, "b": b, "noise_m2": OVERLAY_NOISE_M2, "srid": srid})
    return cur.rowcount // 2


def _assign_admin_codes(conn: psycopg.Connection, layer: str, others: Iterable[str]) -> None:
    """Give cells their district/street/community: the admin unit holding the largest share."""
    others = list(others)
    for admin in ADMIN_LAYERS:
        column = pgsql.Identifier(f"{admin}_code")
        if admin == layer:
            targets = others  # the admin layer changed: every other layer's cells may move
        elif admin in others:
            targets = [layer]  # this layer changed: its cells take units from the admin layer
        else:
            continue
        stmt = pgsql.SQL(sql("overlay_assign_admin")).format(column=column)
        conn.execute(stmt, {"admin": admin, "layers": [t for t in targets if t != admin]})
