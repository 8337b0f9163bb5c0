"""The map's counts are kept by differences: thousands of concurrent writes of every kind must leave
exactly what a from-scratch recompute gives, never a count below zero, never a deadlock."""

from __future__ import annotations

import random
import threading

import psycopg
import pytest

from gridrisk.services.risk_map import verify

LEVELS = ("red", "orange", "yellow", "blue")
SOURCE_STATUSES = ("active", "active", "suspended", "closed")
HAZARD_STATUSES = ("identified", "monitoring", "remediating", "remediated", "closed")

INSERT_SOURCES = """
INSERT INTO risk_sources (code, name, category, geom, method, override_level, status, created_by, updated_by)
SELECT 'MC-' || c, 'count test', 'gas', ST_GeomFromEWKT(g), 'direct', l, 'active', 't', 't'
FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(c, g, l)
RETURNING id
"""
INSERT_HAZARD = """
INSERT INTO hazard_points (code, name, kind, geom, level, created_by, updated_by)
VALUES (%s, 'count test', 'waterlogging', ST_GeomFromEWKT(%s), %s, 't', 't') RETURNING id
"""


def _spots(url: str) -> list[tuple[float, float]]:
    """Random points over the test city, a third of them crowded into one block (a hot district cell)."""
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(0.3)")
        spread = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), 400, 3))).geom g"
            " FROM cells WHERE layer = 'district') p"
        ).fetchall()
    x0, y0 = spread[0]
    hot = [(x0 + (i % 7) * 0.0004, y0 + (i // 7) * 0.0004) for i in range(200)]
    return spread + hot


def _geom(rng: random.Random, spots) -> str:
    x, y = rng.choice(spots)
    if rng.random() < 0.15:  # a small site polygon, often across a cell edge
        d = rng.uniform(0.0005, 0.004)
        return f"SRID=4326;POLYGON(({x} {y},{x + d} {y},{x + d} {y + d},{x} {y + d},{x} {y}))"
    return f"SRID=4326;POINT({x} {y})"


def _worker(url: str, w: int, spots, ops: int, errors: list, deadlocks: list) -> None:
    rng = random.Random(w)
    sources: list[int] = []
    hazards: list[int] = []
    with psycopg.connect(url) as conn:
        for i in range(ops):
            kind = rng.random()
            try:
                with conn.transaction():
                    if kind < 0.25 or not sources:
                        n = 1 if rng.random() < 0.8 else rng.randint(2, 25)  # a batch, as an import writes
                        codes = [f"{w}-{i}-{k}" for k in range(n)]
                        geoms = [_geom(rng, spots) for _ in range(n)]
                        levels = [rng.choice(LEVELS) for _ in range(n)]
                        rows = conn.execute(INSERT_SOURCES, (codes, geoms, levels)).fetchall()
                        sources += [r[0] for r in rows]
                    elif kind < 0.45:
                        conn.execute(
                            "UPDATE risk_sources SET geom = ST_GeomFromEWKT(%s) WHERE id = %s",
                            (_geom(rng, spots), rng.choice(sources)),
                        )
                    elif kind < 0.60:
                        conn.execute(
                            "UPDATE risk_sources SET override_level = %s WHERE id = ANY(%s)",
                            (rng.choice(LEVELS), rng.sample(sources, min(len(sources), rng.randint(1, 4)))),
                        )
                    elif kind < 0.70:
                        conn.execute(
                            "UPDATE risk_sources SET status = %s WHERE id = %s",
                            (rng.choice(SOURCE_STATUSES), rng.choice(sources)),
                        )
                    elif kind < 0.74:
                        sid = sources.pop(rng.randrange(len(sources)))
                        conn.execute("DELETE FROM risk_sources WHERE id = %s", (sid,))
                    elif kind < 0.82 or not hazards:
                        hid = conn.execute(
                            INSERT_HAZARD, (f"MCH-{w}-{i}", _geom(rng, spots), rng.choice(LEVELS))
                        ).fetchone()[0]
                        hazards.append(hid)
                    elif kind < 0.92:
                        conn.execute(
                            "UPDATE hazard_points SET status = %s, level = %s, geom ="
                            " CASE WHEN random() < 0.3 THEN ST_GeomFromEWKT(%s) ELSE geom END WHERE id = %s",
                            (
                                rng.choice(HAZARD_STATUSES),
                                rng.choice(LEVELS),
                                _geom(rng, spots),
                                rng.choice(hazards),
                            ),
                        )
                    else:
                        x, y = rng.choice(spots)
                        cell = conn.execute(
                            "SELECT cell_id FROM cell_pieces"
                            " WHERE ST_Intersects(geom, ST_Point(%s, %s, 4326)) ORDER BY random() LIMIT 1",
                            (x, y),
                        ).fetchone()
                        if cell:
                            colour = rng.choice((*LEVELS, None))
                            conn.execute(
                                "UPDATE cell_risk SET pinned_colour = %(c)s,"
                                " colour = coalesce(%(c)s::text, computed_colour) WHERE cell_id = %(id)s",
                                {"c": colour, "id": cell[0]},
                            )
            except psycopg.errors.DeadlockDetected as exc:
                deadlocks.append(str(exc))
            except Exception as exc:  # noqa: BLE001 - reported by the test, with the worker's number
                errors.append(f"worker {w}, op {i}: {exc!r}")
                return


@pytest.mark.parametrize("workers,ops", [(8, 300)])
def test_thousands_of_concurrent_writes_equal_a_recompute(city_db_url, workers, ops):
    spots = _spots(city_db_url)
    errors: list[str] = []
    deadlocks: list[str] = []
    threads = [
        threading.Thread(target=_worker, args=(city_db_url, w, spots, ops, errors, deadlocks))
        for w in range(workers)
    ]

    # Meanwhile a layer is reassigned and recounted from scratch, as a re-import does.
    def recount() -> None:
        with psycopg.connect(city_db_url) as conn:
            for layer in ("district", "emergency", "district"):
                with conn.transaction():
                    conn.execute("SELECT risk_refresh_layer(%s)", (layer,))

    threads.append(threading.Thread(target=recount))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and deadlocks == []
    with psycopg.connect(city_db_url) as conn:
        written = conn.execute(
            "SELECT (SELECT count(*) FROM risk_sources WHERE code LIKE 'MC-%%'),"
            " (SELECT count(*) FROM hazard_points WHERE code LIKE 'MCH-%%'),"
            " (SELECT min(least(n_red, n_orange, n_yellow, n_blue)) FROM cell_risk)"
        ).fetchone()
        assert written[0] > 500 and written[1] > 100 and written[2] >= 0
        assert verify(conn) == []
        # The district layer counts every active source once (a point lies in one district).
        counted, active = conn.execute(
            "SELECT (SELECT sum(n_red + n_orange + n_yellow + n_blue) FROM cell_risk"
            "  WHERE layer = 'district'),"
            " (SELECT count(*) FROM source_cells k JOIN risk_sources s ON s.id = k.source_id"
            "  WHERE k.layer = 'district' AND s.status = 'active')"
            " + (SELECT count(*) FROM hazard_cells k JOIN hazard_points h ON h.id = k.hazard_id"
            "  WHERE k.layer = 'district' AND h.status NOT IN ('remediated', 'closed'))"
        ).fetchone()
        assert counted == active


def test_a_count_below_zero_is_refused(city_db_url):
    """The counts' floor is a constraint: a lost update shows as an error, never as a wrong colour."""
    with psycopg.connect(city_db_url) as conn:
        cell = conn.execute("SELECT cell_id FROM cell_risk WHERE n_red = 0 LIMIT 1").fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "SELECT cell_counts_apply(ARRAY[%s]::bigint[], '{-1}', '{0}', '{0}', '{0}', true)", (cell,)
            )


def test_a_move_inside_a_district_does_not_touch_the_district(city_db_url):
    """A write adds only the difference it makes: the district's row is not rewritten (nor locked)."""
    with psycopg.connect(city_db_url, autocommit=True) as conn:
        x, y = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM cells"
            " WHERE layer = 'comprehensive' ORDER BY code LIMIT 1) c"
        ).fetchone()
        sid = conn.execute(
            "INSERT INTO risk_sources"
            " (code, name, category, geom, method, override_level, created_by, updated_by)"
            " VALUES ('MC-MOVE', 'm', 'gas', ST_Point(%s, %s, 4326), 'direct', 'red', 't', 't') RETURNING id",
            (x, y),
        ).fetchone()[0]
        district = (
            "SELECT xmin::text FROM cell_risk WHERE layer = 'district' AND cell_id IN"
            " (SELECT cell_id FROM source_cells WHERE source_id = %s)"
        )
        before = conn.execute(district, (sid,)).fetchone()[0]
        conn.execute(
            "UPDATE risk_sources SET geom = ST_Point(%s, %s, 4326) WHERE id = %s", (x + 1e-5, y, sid)
        )
        assert conn.execute(district, (sid,)).fetchone()[0] == before
        conn.execute("UPDATE risk_sources SET override_level = 'yellow' WHERE id = %s", (sid,))
        assert conn.execute(district, (sid,)).fetchone()[0] != before
        conn.execute("DELETE FROM risk_sources WHERE id = %s", (sid,))
        assert verify(conn) == []
