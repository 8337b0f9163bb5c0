"""Risk sources, assessment thresholds and the always-current four-colour map.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 05:36:27.139787
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


CATEGORIES = [
    ("hazardous_chemicals", "危险化学品", "Hazardous chemicals"),
    ("gas", "燃气", "Gas stations and pipelines"),
    ("construction_site", "建筑工地", "Construction site"),
    ("crowded_place", "人员密集场所", "Crowded place"),
    ("special_equipment", "特种设备", "Special equipment"),
    ("tailings_pond", "尾矿库", "Tailings pond"),
    ("fireworks", "烟花爆竹", "Fireworks"),
    ("dust_explosion", "粉尘涉爆", "Dust explosion"),
    ("ammonia_refrigeration", "涉氨制冷", "Ammonia refrigeration"),
    ("confined_space", "有限空间", "Confined space"),
    ("road_water_transport", "道路水路运输", "Road and water transport"),
    ("other", "其他", "Other"),
]

# SPEC.md defaults. LEC: D > 320 red, 160 < D ≤ 320 orange, 70 < D ≤ 160 yellow, else blue.
# Risk matrix: R ≥ 20 red, 15–16 orange, 9–12 yellow, R ≤ 8 blue.
THRESHOLDS = [
    ("LEC", "red", 320, False),
    ("LEC", "orange", 160, False),
    ("LEC", "yellow", 70, False),
    ("LS", "red", 20, True),
    ("LS", "orange", 15, True),
    ("LS", "yellow", 9, True),
]

# What counts toward a cell's colour. Hazard points join this view in their own migration.
CELL_RISK_ITEMS = """
CREATE VIEW cell_risk_items AS
SELECT sc.cell_id, rs.level, 'risk_source'::text AS kind, rs.id AS item_id
FROM source_cells sc
JOIN risk_sources rs ON rs.id = sc.source_id
WHERE rs.status = 'active'
"""

# Every new cell, whatever wrote it, gets its row in the map (blue until something lies in it).
CELL_RISK_TRIGGER = """
CREATE FUNCTION cells_init_risk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cell_risk (cell_id, layer, code)
    SELECT n.id, n.layer, n.code FROM new_cells n
    ON CONFLICT (cell_id) DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER cells_init_risk AFTER INSERT ON cells
REFERENCING NEW TABLE AS new_cells FOR EACH STATEMENT EXECUTE FUNCTION cells_init_risk();
"""


# The map's machinery lives in the database so that every path that writes (API, bulk import,
# CLI, plain SQL) keeps it current in the same transaction.
FUNCTIONS = r"""
-- The level a score reaches under the current thresholds (highest satisfied; blue is the floor).
CREATE FUNCTION assess_level(p_method text, p_score double precision) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT t.level FROM assessment_thresholds t
        WHERE t.method = p_method
          AND (p_score > t.min_score OR (t.min_inclusive AND p_score = t.min_score))
        ORDER BY t.min_score DESC
        LIMIT 1), 'blue')
$$;

-- Score and level are always computed here, never taken from the client.
CREATE FUNCTION risk_sources_assess() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.method = 'LEC' THEN
        NEW.score := NEW.l * NEW.e * NEW.c;
        NEW.s := NULL;
    ELSIF NEW.method = 'LS' THEN
        NEW.score := NEW.l * NEW.s;
        NEW.e := NULL; NEW.c := NULL;
    ELSE
        NEW.score := NULL; NEW.l := NULL; NEW.e := NULL; NEW.c := NULL; NEW.s := NULL;
    END IF;
    NEW.computed_level := CASE WHEN NEW.method IN ('LEC', 'LS') THEN assess_level(NEW.method, NEW.score) END;
    NEW.level := coalesce(NEW.override_level, NEW.computed_level);
    IF NEW.level IS NULL THEN
        RAISE EXCEPTION 'a direct assessment needs a level' USING ERRCODE = 'check_violation',
            CONSTRAINT = 'ck_risk_sources_level';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER risk_sources_assess BEFORE INSERT OR UPDATE ON risk_sources
FOR EACH ROW EXECUTE FUNCTION risk_sources_assess();

-- Recompute the colour of the given cells from what lies in them, and record every change.
-- Concurrency: the cell rows are locked first (in id order, so writers never deadlock on
-- them); a VOLATILE function takes a fresh snapshot per statement, so the recount that follows
-- sees every transaction that held these cells before us. No update is ever lost.
CREATE FUNCTION risk_recolour(p_cells bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    n_changed integer;
BEGIN
    IF p_cells IS NULL OR cardinality(p_cells) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM cell_risk WHERE cell_id = ANY(p_cells) ORDER BY cell_id FOR UPDATE;
    WITH agg AS (
        SELECT cr.cell_id,
               count(i.item_id) FILTER (WHERE i.level = 'red')::int AS r,
               count(i.item_id) FILTER (WHERE i.level = 'orange')::int AS o,
               count(i.item_id) FILTER (WHERE i.level = 'yellow')::int AS y,
               count(i.item_id) FILTER (WHERE i.level = 'blue')::int AS b
        FROM cell_risk cr
        LEFT JOIN cell_risk_items i ON i.cell_id = cr.cell_id
        WHERE cr.cell_id = ANY(p_cells)
        GROUP BY cr.cell_id
    ),
    calc AS (
        SELECT cell_id, r, o, y, b,
               CASE WHEN r > 0 THEN 'red' WHEN o > 0 THEN 'orange' WHEN y > 0 THEN 'yellow' ELSE 'blue' END
                   AS computed,
               -- A finer shade than the colour: weighted count of what lies in the cell.
               (100 * r + 30 * o + 10 * y + b)::float8 AS score
        FROM agg
    ),
    before AS (
        SELECT cell_id, colour FROM cell_risk WHERE cell_id = ANY(p_cells)
    ),
    upd AS (
        UPDATE cell_risk cr
        SET n_red = calc.r, n_orange = calc.o, n_yellow = calc.y, n_blue = calc.b,
            computed_colour = calc.computed,
            colour = coalesce(cr.pinned_colour, calc.computed),
            score = calc.score,
            changed_at = CASE WHEN coalesce(cr.pinned_colour, calc.computed) <> cr.colour
                              THEN clock_timestamp() ELSE cr.changed_at END
        FROM calc
        WHERE cr.cell_id = calc.cell_id
          AND (cr.n_red, cr.n_orange, cr.n_yellow, cr.n_blue, cr.computed_colour)
              IS DISTINCT FROM (calc.r, calc.o, calc.y, calc.b, calc.computed)
        RETURNING cr.cell_id, cr.layer, cr.code, cr.colour, cr.computed_colour,
                  cr.n_red, cr.n_orange, cr.n_yellow, cr.n_blue, cr.score
    ),
    changes AS (
        SELECT u.*, b.colour AS old_colour FROM upd u JOIN before b USING (cell_id)
    ),
    hist AS (
        INSERT INTO cell_colour_history (cell_id, at, old, new, computed, counts)
        SELECT cell_id, clock_timestamp(), old_colour, colour, computed_colour,
               jsonb_build_object('red', n_red, 'orange', n_orange, 'yellow', n_yellow, 'blue', n_blue,
                                  'score', score)
        FROM changes
    ),
    ev AS (
        INSERT INTO events (at, kind, payload)
        SELECT clock_timestamp(), 'cell_colour',
               jsonb_build_object('layer', layer, 'code', code, 'old', old_colour, 'new', colour,
                                  'at', clock_timestamp())
        FROM changes WHERE colour <> old_colour
        ORDER BY layer, code
        RETURNING 1
    )
    SELECT count(*) INTO n_changed FROM ev;
    IF n_changed > 0 THEN
        PERFORM pg_notify('gridrisk_events', '');
    END IF;
    RETURN n_changed;
END $$;

-- Reassign sources to the cells of every layer they lie in, then recolour old and new cells.
-- A point belongs to one cell per layer (the smallest code on a shared edge, as /cells/at says);
-- a polygon to every cell whose interior it shares.
CREATE FUNCTION risk_refresh_sources(p_ids bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    touched bigint[];
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM source_cells WHERE source_id = ANY(p_ids) RETURNING cell_id
    ),
    pts AS (
        SELECT DISTINCT ON (s.id, c.layer) s.id AS source_id, c.id AS cell_id, c.layer
        FROM risk_sources s
        JOIN cell_pieces p ON p.geom && s.geom AND ST_Intersects(p.geom, s.geom)
        JOIN cells c ON c.id = p.cell_id
        WHERE s.id = ANY(p_ids) AND GeometryType(s.geom) = 'POINT'
        ORDER BY s.id, c.layer, c.code
    ),
    polys AS (
        SELECT DISTINCT s.id AS source_id, c.id AS cell_id, c.layer
        FROM risk_sources s
        JOIN cell_pieces p ON p.geom && s.geom AND ST_Intersects(p.geom, s.geom)
                              AND NOT ST_Touches(p.geom, s.geom)
        JOIN cells c ON c.id = p.cell_id
        WHERE s.id = ANY(p_ids) AND GeometryType(s.geom) <> 'POINT'
    ),
    added AS (
        INSERT INTO source_cells (source_id, cell_id, layer)
        SELECT source_id, cell_id, layer FROM pts
        UNION
        SELECT source_id, cell_id, layer FROM polys
        RETURNING cell_id
    )
    SELECT array_agg(DISTINCT cell_id) INTO touched
    FROM (SELECT cell_id FROM gone UNION ALL SELECT cell_id FROM added) t;
    RETURN risk_recolour(touched);
END $$;

-- After a layer's geometry changed (import): reassign every source to it and recolour it.
CREATE FUNCTION risk_refresh_layer(p_layer text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    touched bigint[];
BEGIN
    DELETE FROM source_cells WHERE layer = p_layer;
    INSERT INTO source_cells (source_id, cell_id, layer)
    SELECT DISTINCT ON (s.id, c.layer) s.id, c.id, c.layer
    FROM risk_sources s
    JOIN cell_pieces p ON p.layer = p_layer AND p.geom && s.geom AND ST_Intersects(p.geom, s.geom)
    JOIN cells c ON c.id = p.cell_id
    WHERE GeometryType(s.geom) = 'POINT'
    ORDER BY s.id, c.layer, c.code;
    INSERT INTO source_cells (source_id, cell_id, layer)
    SELECT DISTINCT s.id, c.id, c.layer
    FROM risk_sources s
    JOIN cell_pieces p ON p.layer = p_layer AND p.geom && s.geom AND ST_Intersects(p.geom, s.geom)
                          AND NOT ST_Touches(p.geom, s.geom)
    JOIN cells c ON c.id = p.cell_id
    WHERE GeometryType(s.geom) <> 'POINT';
    SELECT array_agg(cell_id) INTO touched FROM cell_risk WHERE layer = p_layer;
    RETURN risk_recolour(touched);
END $$;

-- Every write of risk sources, whatever its path (API, bulk import, SQL), keeps the map current
-- inside the same statement: set-based, so a 100,000-row import recolours each cell once.
CREATE FUNCTION risk_sources_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM risk_refresh_sources(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;
CREATE TRIGGER risk_sources_after_insert AFTER INSERT ON risk_sources
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION risk_sources_after_insert();

CREATE FUNCTION risk_sources_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM risk_refresh_sources(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE ST_AsEWKB(n.geom) <> ST_AsEWKB(o.geom) OR n.level <> o.level OR n.status <> o.status));
    RETURN NULL;
END $$;
CREATE TRIGGER risk_sources_after_update AFTER UPDATE ON risk_sources
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION risk_sources_after_update();

-- The history of every version, written where the change happens (who comes from the row).
CREATE FUNCTION risk_source_doc(s risk_sources) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object(
        'code', s.code, 'name', s.name, 'category', s.category,
        'geometry', ST_AsGeoJSON(s.geom, 7)::jsonb, 'address', s.address, 'plate_code', s.plate_code,
        'enterprise', s.enterprise, 'department', s.department, 'method', s.method,
        'L', s.l, 'E', s.e, 'C', s.c, 'S', s.s, 'score', s.score, 'computed_level', s.computed_level,
        'override_level', s.override_level, 'override_reason', s.override_reason,
        'level', s.level, 'status', s.status)
$$;

CREATE FUNCTION risk_sources_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO risk_source_history (source_id, version, at, by, op, changes, level, status, geom)
        SELECT n.id, n.version, n.updated_at, n.updated_by, 'create',
               (SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(NULL, v)), '{}'::jsonb)
                FROM jsonb_each(risk_source_doc(n)) AS d(k, v) WHERE v <> 'null'::jsonb),
               n.level, n.status, n.geom
        FROM new_rows n;
    ELSE
        INSERT INTO risk_source_history (source_id, version, at, by, op, changes, level, status, geom)
        SELECT n.id, n.version, n.updated_at, n.updated_by,
               CASE WHEN n.status = 'closed' AND o.status <> 'closed' THEN 'close' ELSE 'update' END,
               (SELECT coalesce(jsonb_object_agg(d.k, jsonb_build_array(od -> d.k, d.v)), '{}'::jsonb)
                FROM jsonb_each(risk_source_doc(n)) AS d(k, v), risk_source_doc(o) AS od
                WHERE (od -> d.k) IS DISTINCT FROM d.v),
               n.level, n.status, n.geom
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.version <> o.version;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER risk_sources_history_insert AFTER INSERT ON risk_sources
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION risk_sources_history();
CREATE TRIGGER risk_sources_history_update AFTER UPDATE ON risk_sources
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION risk_sources_history();
"""

DROP_FUNCTIONS = """
DROP TRIGGER IF EXISTS risk_sources_history_update ON risk_sources;
DROP TRIGGER IF EXISTS risk_sources_history_insert ON risk_sources;
DROP TRIGGER IF EXISTS risk_sources_after_update ON risk_sources;
DROP TRIGGER IF EXISTS risk_sources_after_insert ON risk_sources;
DROP TRIGGER IF EXISTS risk_sources_assess ON risk_sources;
DROP FUNCTION IF EXISTS risk_sources_history();
DROP FUNCTION IF EXISTS risk_source_doc(risk_sources);
DROP FUNCTION IF EXISTS risk_sources_after_update();
DROP FUNCTION IF EXISTS risk_sources_after_insert();
DROP FUNCTION IF EXISTS risk_refresh_layer(text);
DROP FUNCTION IF EXISTS risk_refresh_sources(bigint[]);
DROP FUNCTION IF EXISTS risk_recolour(bigint[]);
DROP FUNCTION IF EXISTS risk_sources_assess();
DROP FUNCTION IF EXISTS assess_level(text, double precision);
"""


def upgrade() -> None:
    op.create_table(
        "assessment_thresholds",
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("min_inclusive", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), server_default="migration", nullable=False),
        sa.CheckConstraint(
            "level IN ('red', 'orange', 'yellow')", name=op.f("ck_assessment_thresholds_level")
        ),
        sa.CheckConstraint("method IN ('LEC', 'LS')", name=op.f("ck_assessment_thresholds_method")),
        sa.PrimaryKeyConstraint("method", "level", name=op.f("pk_assessment_thresholds")),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_table(
        "risk_categories",
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_risk_categories")),
    )
    op.create_table(
        "threshold_changes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("old", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("new", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_threshold_changes")),
    )
    op.create_geospatial_table(
        "risk_sources",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("plate_code", sa.Text(), nullable=True),
        sa.Column("enterprise", sa.Text(), nullable=True),
        sa.Column("department", sa.Text(), nullable=True),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("l", sa.Float(), nullable=True),
        sa.Column("e", sa.Float(), nullable=True),
        sa.Column("c", sa.Float(), nullable=True),
        sa.Column("s", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("computed_level", sa.Text(), nullable=True),
        sa.Column("override_level", sa.Text(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')"
            " AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)",
            name=op.f("ck_risk_sources_geom"),
        ),
        sa.CheckConstraint(
            "level IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_risk_sources_level")
        ),
        sa.CheckConstraint("method IN ('LEC', 'LS', 'direct')", name=op.f("ck_risk_sources_method")),
        sa.CheckConstraint(
            "status IN ('active', 'suspended', 'closed')", name=op.f("ck_risk_sources_status")
        ),
        sa.ForeignKeyConstraint(
            ["category"], ["risk_categories.code"], name=op.f("fk_risk_sources_category_risk_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_sources")),
        sa.UniqueConstraint("code", name=op.f("uq_risk_sources_code")),
        sa.UniqueConstraint("plate_code", name=op.f("uq_risk_sources_plate_code")),
    )
    op.create_index("ix_risk_sources_category_level", "risk_sources", ["category", "level"], unique=False)
    op.create_geospatial_index(
        "ix_risk_sources_geom",
        "risk_sources",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "cell_colour_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("old", sa.Text(), nullable=False),
        sa.Column("new", sa.Text(), nullable=False),
        sa.Column("computed", sa.Text(), nullable=False),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_cell_colour_history_cell_id_cells"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_colour_history")),
    )
    op.create_index("ix_cell_colour_history_cell_at", "cell_colour_history", ["cell_id", "at"], unique=False)
    op.create_table(
        "cell_pins",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("colour", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_cell_pins_cell_id_cells"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_pins")),
    )
    op.create_table(
        "cell_risk",
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("computed_colour", sa.Text(), server_default="blue", nullable=False),
        sa.Column("pinned_colour", sa.Text(), nullable=True),
        sa.Column("pin_reason", sa.Text(), nullable=True),
        sa.Column("pinned_by", sa.Text(), nullable=True),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("colour", sa.Text(), server_default="blue", nullable=False),
        sa.Column("score", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_red", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_orange", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_yellow", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("n_blue", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("colour IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_cell_risk_colour")),
        sa.CheckConstraint(
            "computed_colour IN ('red', 'orange', 'yellow', 'blue')",
            name=op.f("ck_cell_risk_computed_colour"),
        ),
        sa.CheckConstraint(
            "pinned_colour IS NULL OR pinned_colour IN ('red', 'orange', 'yellow', 'blue')",
            name=op.f("ck_cell_risk_pinned_colour"),
        ),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_cell_risk_cell_id_cells"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("cell_id", name=op.f("pk_cell_risk")),
    )
    op.create_index("ix_cell_risk_layer_colour", "cell_risk", ["layer", "colour"], unique=False)
    op.create_geospatial_table(
        "risk_source_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["risk_sources.id"],
            name=op.f("fk_risk_source_history_source_id_risk_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_source_history")),
        sa.UniqueConstraint("source_id", "version", name=op.f("uq_risk_source_history_source_id_version")),
    )
    op.create_index("ix_risk_source_history_at", "risk_source_history", ["at"], unique=False)
    op.create_table(
        "source_cells",
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_source_cells_cell_id_cells"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["risk_sources.id"],
            name=op.f("fk_source_cells_source_id_risk_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", "cell_id", name=op.f("pk_source_cells")),
    )
    op.create_index("ix_source_cells_cell", "source_cells", ["cell_id"], unique=False)
    categories = sa.table("risk_categories", sa.column("code"), sa.column("name"), sa.column("name_en"))
    op.bulk_insert(categories, [dict(zip(("code", "name", "name_en"), c, strict=True)) for c in CATEGORIES])
    thresholds = sa.table(
        "assessment_thresholds",
        sa.column("method"),
        sa.column("level"),
        sa.column("min_score", sa.Float),
        sa.column("min_inclusive", sa.Boolean),
    )
    op.bulk_insert(
        thresholds,
        [dict(zip(("method", "level", "min_score", "min_inclusive"), t, strict=True)) for t in THRESHOLDS],
    )
    op.execute(CELL_RISK_ITEMS)
    op.execute(CELL_RISK_TRIGGER)
    op.execute(FUNCTIONS)
    op.execute("INSERT INTO cell_risk (cell_id, layer, code) SELECT id, layer, code FROM cells")


def downgrade() -> None:
    op.execute(DROP_FUNCTIONS)
    op.execute("DROP TRIGGER IF EXISTS cells_init_risk ON cells")
    op.execute("DROP FUNCTION IF EXISTS cells_init_risk()")
    op.execute("DROP VIEW IF EXISTS cell_risk_items")
    op.drop_index("ix_source_cells_cell", table_name="source_cells")
    op.drop_table("source_cells")
    op.drop_index("ix_risk_source_history_at", table_name="risk_source_history")
    op.drop_geospatial_table("risk_source_history")
    op.drop_index("ix_cell_risk_layer_colour", table_name="cell_risk")
    op.drop_table("cell_risk")
    op.drop_table("cell_pins")
    op.drop_index("ix_cell_colour_history_cell_at", table_name="cell_colour_history")
    op.drop_table("cell_colour_history")
    op.drop_geospatial_index(
        "ix_risk_sources_geom", table_name="risk_sources", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_risk_sources_category_level", table_name="risk_sources")
    op.drop_geospatial_table("risk_sources")
    op.drop_table("threshold_changes")
    op.drop_table("risk_categories")
    op.drop_table("events")
    op.drop_table("assessment_thresholds")
