"""Statement triggers stay linear when a large write follows small ones on the same connection.

PL/pgSQL caches a trigger's plan from its first call, and transition tables carry no statistics: a
join of old and new rows planned for a one-row write as a nested loop would be quadratic when reused
for thousands of rows (see map_items_updated in src/gridrisk/db/functions/cell_assignment.sql: every
such join is a FULL JOIN). This is the pooled-connection case: API writes, then a bulk
import, on one connection that forces generic plans as the pool does.
"""

from __future__ import annotations

import time

import psycopg

from gridrisk.db.sql_files import sql

ROWS = 6000


def test_a_large_update_after_small_ones_stays_linear(city_db_url):
    with psycopg.connect(city_db_url, options="-c plan_cache_mode=force_generic_plan") as conn:
        conn.execute(
            "INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, created_by, updated_by)"
            " SELECT 'TP-' || i, 'plan test', 'gas',"
            "        ST_SetSRID(ST_MakePoint(118.75 + (i %% 80) * 0.001, 32.02 + (i / 80) * 0.001), 4326),"
            "        'LEC', 1, 1, 1, 't', 't'"
            " FROM generate_series(1, %s) AS i",
            (ROWS,),
        )
        conn.commit()
        ids = [r[0] for r in conn.execute("SELECT id FROM risk_sources ORDER BY id LIMIT 5")]
        for source_id in ids:  # the triggers plan (and cache) their joins for one row
            conn.execute("UPDATE risk_sources SET address = 'one' WHERE id = %s", (source_id,))
            conn.execute("UPDATE hazard_points SET notes = 'one' WHERE id = %s", (source_id,))
        conn.commit()

        started = time.monotonic()
        # Level changes too, so the recolour path and the history both see every row.
        n = conn.execute(
            "UPDATE risk_sources SET address = 'many', l = 6, e = 6, c = 15, version = version + 1"
        ).rowcount
        elapsed = time.monotonic() - started
        conn.commit()

        assert n == ROWS
        history = conn.execute(
            "SELECT count(*) FROM risk_source_history WHERE op = 'update' AND changes ? 'address'"
        ).fetchone()[0]
        assert history >= ROWS  # every row's version was recorded
        event = conn.execute(
            "SELECT payload FROM events WHERE kind = 'feature_changed' ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
        assert event["count"] == ROWS and event["ids"] is None  # one event for the whole statement
    # Linear: about 1 s here; with inner joins of old and new rows it took 7.8 s at 4,000 rows (quadratic).
    assert elapsed < 6.0, f"{ROWS}-row update took {elapsed:.1f} s: a trigger join went quadratic"


# item_in_piece's rule, as every write applies it (cell_assignment.sql): the reference for the bulk
# spelling in fresh_item_cells, which must pick exactly the same cells.
REFERENCE = """
SELECT DISTINCT ON (s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END)
       s.id, c.id, c.layer
FROM cell_pieces p
CROSS JOIN LATERAL (SELECT s.id, s.geom FROM {items} s WHERE item_in_piece(p.geom, s.geom) OFFSET 0) s
JOIN cells c ON c.id = p.cell_id
ORDER BY s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END, c.code
"""


def test_the_bulk_reassignment_picks_the_cells_every_write_picks(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        # The hard cases: points on shared vertices and edges of cells, polygons that only touch
        # a neighbour, polygons across several cells.
        conn.execute(
            "INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, created_by, updated_by)"
            " SELECT 'EDGE-' || row_number() OVER (), 'edge test', 'gas', g, 'LEC', 3, 6, 7, 't', 't'"
            " FROM (SELECT (ST_DumpPoints(geom)).geom AS g FROM cells WHERE layer = 'safety'"
            "       ORDER BY code LIMIT 40) v"
            " UNION ALL"
            " SELECT 'EDGE-P' || id, 'cell polygon', 'gas', ST_Multi(geom), 'LEC', 3, 6, 7, 't', 't'"
            " FROM (SELECT id, geom FROM cells WHERE layer = 'emergency' ORDER BY code LIMIT 5) c"
        )
        conn.execute(
            "INSERT INTO hazard_points (code, name, kind, level, geom, created_by, updated_by)"
            " SELECT 'EDGE-' || row_number() OVER (), 'edge test', 'waterlogging', 'orange', g, 't', 't'"
            " FROM (SELECT (ST_DumpPoints(geom)).geom AS g FROM cells WHERE layer = 'comprehensive'"
            "       ORDER BY code LIMIT 30) v"
        )
        conn.commit()
        for items in ("risk_sources", "hazard_points"):
            bulk = set(conn.execute("SELECT * FROM fresh_item_cells(%s, NULL)", (items,)).fetchall())
            reference = set(conn.execute(REFERENCE.format(items=items)).fetchall())
            assert bulk == reference and len(reference) > 100, items
            one_layer = set(conn.execute("SELECT * FROM fresh_item_cells(%s, 'safety')", (items,)).fetchall())
            assert one_layer == {r for r in reference if r[2] == "safety"}, items


def _scans_of(node: dict, cte: str) -> int:
    """How many times the plan reads the CTE named CTE."""
    own = node.get("Node Type") == "CTE Scan" and node.get("CTE Name") == cte
    return own + sum(_scans_of(kid, cte) for kid in node.get("Plans", []))


def test_match_needs_read_the_orders_once_per_branch(db_url):
    """The needs of a warning's orders (warning_match_needs.sql) come from the two branches of its
    rules alone. Joining the orders back to those rules was a join of the materialized CTE that the
    planner, not having seen the new orders yet, made a nested loop of needs × orders: 25 s for the
    demo city's first whole-city warning, 3 s now."""
    with psycopg.connect(db_url) as conn:
        (plan,) = conn.execute(
            "EXPLAIN (FORMAT JSON) " + sql("warning_match_needs"), {"warning_id": 1}
        ).fetchone()
    assert _scans_of(plan[0]["Plan"], "o") == 2
