"""Faster full recompute: one pass over every layer, cell pieces driving the spatial join.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 06:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# With pieces as the outer side of the join, consecutive point tests hit the same piece, so
# PostGIS reuses its prepared geometry; with points outside, every test starts from scratch.
# Measured on 100,000 points over 37,000 pieces: the join went from 7.3 s to 3.0 s.
FUNCTIONS = r"""
-- The cells every item lies in, per the assignment rules (a point: one cell per layer, the
-- smallest code on a shared edge; a polygon: every cell whose interior it shares). OFFSET 0 keeps
-- the planner from flattening the LATERAL, so the pieces stay on the outside of the join.
CREATE FUNCTION fresh_item_cells(p_items text, p_layer text)
RETURNS TABLE (item_id bigint, cell_id bigint, layer text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT DISTINCT ON (s.id, c.layer) s.id, c.id, c.layer
        FROM cell_pieces p
        CROSS JOIN LATERAL (
            SELECT s.id FROM %1$I s
            WHERE s.geom && p.geom AND ST_Intersects(p.geom, s.geom) AND GeometryType(s.geom) = 'POINT'
            OFFSET 0
        ) s
        JOIN cells c ON c.id = p.cell_id
        WHERE $1::text IS NULL OR p.layer = $1
        ORDER BY s.id, c.layer, c.code
    $q$, p_items) USING p_layer;
    RETURN QUERY EXECUTE format($q$
        SELECT DISTINCT s.id, p.cell_id, p.layer
        FROM cell_pieces p
        CROSS JOIN LATERAL (
            SELECT s.id FROM %1$I s
            WHERE s.geom && p.geom AND ST_Intersects(p.geom, s.geom) AND NOT ST_Touches(p.geom, s.geom)
              AND GeometryType(s.geom) <> 'POINT'
            OFFSET 0
        ) s
        WHERE $1::text IS NULL OR p.layer = $1
    $q$, p_items) USING p_layer;
END $$;

-- Bring source_cells and hazard_cells in line with a fresh assignment, touching only rows
-- that differ (rewriting 400,000 unchanged rows would cost seconds of foreign-key checks).
CREATE FUNCTION assign_items_to_cells(p_layer text) RETURNS void
LANGUAGE plpgsql SET work_mem = '256MB' AS $$
BEGIN
    WITH fresh AS MATERIALIZED (SELECT * FROM fresh_item_cells('risk_sources', p_layer)),
    gone AS (
        DELETE FROM source_cells sc
        WHERE (p_layer IS NULL OR sc.layer = p_layer)
          AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.item_id = sc.source_id AND f.cell_id = sc.cell_id)
    )
    INSERT INTO source_cells (source_id, cell_id, layer)
    SELECT f.item_id, f.cell_id, f.layer FROM fresh f
    WHERE NOT EXISTS (SELECT 1 FROM source_cells sc
                      WHERE sc.source_id = f.item_id AND sc.cell_id = f.cell_id);
    WITH fresh AS MATERIALIZED (SELECT * FROM fresh_item_cells('hazard_points', p_layer)),
    gone AS (
        DELETE FROM hazard_cells hc
        WHERE (p_layer IS NULL OR hc.layer = p_layer)
          AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.item_id = hc.hazard_id AND f.cell_id = hc.cell_id)
    )
    INSERT INTO hazard_cells (hazard_id, cell_id, layer)
    SELECT f.item_id, f.cell_id, f.layer FROM fresh f
    WHERE NOT EXISTS (SELECT 1 FROM hazard_cells hc
                      WHERE hc.hazard_id = f.item_id AND hc.cell_id = f.cell_id);
END $$;

-- After a layer's geometry changed (import): reassign every item to it and recolour it.
CREATE OR REPLACE FUNCTION risk_refresh_layer(p_layer text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM assign_items_to_cells(p_layer);
    RETURN risk_recolour(ARRAY(SELECT cell_id FROM cell_risk WHERE layer = p_layer));
END $$;

-- The whole map from scratch: every item to every layer's cells, every cell recoloured.
CREATE FUNCTION risk_refresh_all() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM assign_items_to_cells(NULL);
    RETURN risk_recolour(ARRAY(SELECT cell_id FROM cell_risk));
END $$;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    op.execute("DROP FUNCTION IF EXISTS risk_refresh_all()")
    spec = importlib.util.spec_from_file_location(
        "m0003", Path(__file__).with_name("0003_shelters_and_hazard_points.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.FUNCTIONS
    start = text.index("CREATE OR REPLACE FUNCTION risk_refresh_layer")
    op.execute(text[start : text.index("$$;", start) + 3])
    op.execute("DROP FUNCTION IF EXISTS assign_items_to_cells(text)")
    op.execute("DROP FUNCTION IF EXISTS fresh_item_cells(text, text)")
