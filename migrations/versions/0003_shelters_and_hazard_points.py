"""Shelters (classes, occupancy, nearest) and hazard points, which join the four-colour map.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 05:58:11.260082
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# SPEC.md defaults: emergency 500 m and 1 m²/person; fixed 2.5 km and 2 m² (short stay);
# central serves ~50 km² (a radius of ~4 km) at 4.5 m²/person. Sites should exceed 2,000 m².
CLASSES = [
    ("emergency", "紧急避难场所", 500.0, 1.0),
    ("fixed", "固定避难场所", 2500.0, 2.0),
    ("central", "中心避难场所", 3990.0, 4.5),
]

FUNCTIONS = r"""
-- Hazard points count in the map while they are not remediated (or closed).
CREATE OR REPLACE VIEW cell_risk_items AS
SELECT sc.cell_id, rs.level, 'risk_source'::text AS kind, rs.id AS item_id
FROM source_cells sc
JOIN risk_sources rs ON rs.id = sc.source_id
WHERE rs.status = 'active'
UNION ALL
SELECT hc.cell_id, hp.level, 'hazard_point'::text AS kind, hp.id AS item_id
FROM hazard_cells hc
JOIN hazard_points hp ON hp.id = hc.hazard_id
WHERE hp.status NOT IN ('remediated', 'closed');

-- Reassign hazard points to cells (same rules as risk sources) and recolour old and new cells.
CREATE FUNCTION hazard_refresh(p_ids bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    touched bigint[];
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;
    WITH gone AS (
        DELETE FROM hazard_cells WHERE hazard_id = ANY(p_ids) RETURNING cell_id
    ),
    pts AS (
        SELECT DISTINCT ON (h.id, c.layer) h.id AS hazard_id, c.id AS cell_id, c.layer
        FROM hazard_points h
        JOIN cell_pieces p ON p.geom && h.geom AND ST_Intersects(p.geom, h.geom)
        JOIN cells c ON c.id = p.cell_id
        WHERE h.id = ANY(p_ids) AND GeometryType(h.geom) = 'POINT'
        ORDER BY h.id, c.layer, c.code
    ),
    polys AS (
        SELECT DISTINCT h.id AS hazard_id, c.id AS cell_id, c.layer
        FROM hazard_points h
        JOIN cell_pieces p ON p.geom && h.geom AND ST_Intersects(p.geom, h.geom)
                              AND NOT ST_Touches(p.geom, h.geom)
        JOIN cells c ON c.id = p.cell_id
        WHERE h.id = ANY(p_ids) AND GeometryType(h.geom) <> 'POINT'
    ),
    added AS (
        INSERT INTO hazard_cells (hazard_id, cell_id, layer)
        SELECT hazard_id, cell_id, layer FROM pts
        UNION
        SELECT hazard_id, cell_id, layer FROM polys
        RETURNING cell_id
    )
    SELECT array_agg(DISTINCT cell_id) INTO touched
    FROM (SELECT cell_id FROM gone UNION ALL SELECT cell_id FROM added) t;
    RETURN risk_recolour(touched);
END $$;

CREATE FUNCTION hazard_points_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hazard_refresh(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;
CREATE TRIGGER hazard_points_after_insert AFTER INSERT ON hazard_points
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION hazard_points_after_insert();

CREATE FUNCTION hazard_points_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hazard_refresh(ARRAY(
        SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE ST_AsEWKB(n.geom) <> ST_AsEWKB(o.geom) OR n.level <> o.level OR n.status <> o.status));
    RETURN NULL;
END $$;
CREATE TRIGGER hazard_points_after_update AFTER UPDATE ON hazard_points
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION hazard_points_after_update();

-- The date each status was entered, kept by the database so no path can forget it.
CREATE FUNCTION hazard_points_status_dates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_dates := coalesce(NEW.status_dates, '{}'::jsonb)
            || jsonb_build_object(NEW.status, to_jsonb(clock_timestamp()));
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER hazard_points_status_dates BEFORE INSERT OR UPDATE ON hazard_points
FOR EACH ROW EXECUTE FUNCTION hazard_points_status_dates();

-- Version history for shelters and hazard points: TG_ARGV = (history table, id column).
-- Only writes that bump the version are recorded (shelter check-ins change occupancy alone).
CREATE FUNCTION record_version_history() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    skip text[] := ARRAY['geom', 'id', 'version', 'created_at', 'updated_at', 'created_by', 'updated_by'];
    nd jsonb;
    od jsonb;
    diff jsonb;
    op text;
BEGIN
    nd := (to_jsonb(NEW) - skip) || jsonb_build_object('geometry', ST_AsGeoJSON(NEW.geom, 7)::jsonb);
    IF TG_OP = 'INSERT' THEN
        op := 'create';
        SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(NULL, v)), '{}'::jsonb) INTO diff
        FROM jsonb_each(nd) AS d(k, v) WHERE v <> 'null'::jsonb;
    ELSIF NEW.version <> OLD.version THEN
        od := (to_jsonb(OLD) - skip) || jsonb_build_object('geometry', ST_AsGeoJSON(OLD.geom, 7)::jsonb);
        op := CASE WHEN NEW.status = 'closed' AND OLD.status <> 'closed' THEN 'close' ELSE 'update' END;
        SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(od -> k, v)), '{}'::jsonb) INTO diff
        FROM jsonb_each(nd) AS d(k, v) WHERE (od -> k) IS DISTINCT FROM v;
    ELSE
        RETURN NULL;
    END IF;
    EXECUTE format('INSERT INTO %I (%I, version, at, by, op, changes) VALUES ($1, $2, $3, $4, $5, $6)',
                   TG_ARGV[0], TG_ARGV[1])
    USING NEW.id, NEW.version, NEW.updated_at, NEW.updated_by, op, diff;
    RETURN NULL;
END $$;
CREATE TRIGGER shelters_history AFTER INSERT OR UPDATE ON shelters
FOR EACH ROW EXECUTE FUNCTION record_version_history('shelter_history', 'shelter_id');
CREATE TRIGGER hazard_points_history AFTER INSERT OR UPDATE ON hazard_points
FOR EACH ROW EXECUTE FUNCTION record_version_history('hazard_point_history', 'hazard_id');

-- A re-imported layer reassigns hazard points too.
CREATE OR REPLACE FUNCTION risk_refresh_layer(p_layer text) RETURNS integer LANGUAGE plpgsql AS $$
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
    DELETE FROM hazard_cells WHERE layer = p_layer;
    INSERT INTO hazard_cells (hazard_id, cell_id, layer)
    SELECT DISTINCT ON (h.id, c.layer) h.id, c.id, c.layer
    FROM hazard_points h
    JOIN cell_pieces p ON p.layer = p_layer AND p.geom && h.geom AND ST_Intersects(p.geom, h.geom)
    JOIN cells c ON c.id = p.cell_id
    WHERE GeometryType(h.geom) = 'POINT'
    ORDER BY h.id, c.layer, c.code;
    INSERT INTO hazard_cells (hazard_id, cell_id, layer)
    SELECT DISTINCT h.id, c.id, c.layer
    FROM hazard_points h
    JOIN cell_pieces p ON p.layer = p_layer AND p.geom && h.geom AND ST_Intersects(p.geom, h.geom)
                          AND NOT ST_Touches(p.geom, h.geom)
    JOIN cells c ON c.id = p.cell_id
    WHERE GeometryType(h.geom) <> 'POINT';
    SELECT array_agg(cell_id) INTO touched FROM cell_risk WHERE layer = p_layer;
    RETURN risk_recolour(touched);
END $$;
"""

# 0002's definitions, restored on downgrade.
RESTORE_0002 = """
CREATE OR REPLACE VIEW cell_risk_items AS
SELECT sc.cell_id, rs.level, 'risk_source'::text AS kind, rs.id AS item_id
FROM source_cells sc
JOIN risk_sources rs ON rs.id = sc.source_id
WHERE rs.status = 'active';
"""


def upgrade() -> None:
    op.create_geospatial_table(
        "hazard_points",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
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
        sa.Column("threatened_persons", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("property_value", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="identified", nullable=False),
        sa.Column(
            "status_dates",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("responsible_person", sa.Text(), nullable=True),
        sa.Column("responsible_unit", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')"
            " AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)",
            name=op.f("ck_hazard_points_geom"),
        ),
        sa.CheckConstraint(
            "kind IN ('landslide', 'collapse', 'debris_flow', 'ground_subsidence', 'waterlogging',"
            " 'dangerous_building', 'other')",
            name=op.f("ck_hazard_points_kind"),
        ),
        sa.CheckConstraint(
            "level IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_hazard_points_level")
        ),
        sa.CheckConstraint(
            "status IN ('identified', 'monitoring', 'remediating', 'remediated', 'closed')",
            name=op.f("ck_hazard_points_status"),
        ),
        sa.CheckConstraint(
            "threatened_persons >= 0 AND property_value >= 0", name=op.f("ck_hazard_points_nonnegative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_points")),
        sa.UniqueConstraint("code", name=op.f("uq_hazard_points_code")),
    )
    op.create_geospatial_index(
        "ix_hazard_points_geom",
        "hazard_points",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_hazard_points_kind_status", "hazard_points", ["kind", "status"], unique=False)
    op.create_table(
        "shelter_classes",
        sa.Column("class", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("service_radius_m", sa.Float(), nullable=False),
        sa.Column("m2_per_person", sa.Float(), nullable=False),
        sa.Column("min_effective_area_m2", sa.Float(), server_default=sa.text("2000"), nullable=False),
        sa.CheckConstraint(
            "service_radius_m > 0 AND m2_per_person > 0", name=op.f("ck_shelter_classes_positive")
        ),
        sa.PrimaryKeyConstraint("class", name=op.f("pk_shelter_classes")),
    )
    op.create_table(
        "hazard_point_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("hazard_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["hazard_id"],
            ["hazard_points.id"],
            name=op.f("fk_hazard_point_history_hazard_id_hazard_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hazard_point_history")),
        sa.UniqueConstraint("hazard_id", "version", name=op.f("uq_hazard_point_history_hazard_id_version")),
    )
    op.create_geospatial_table(
        "shelters",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("class", sa.Text(), nullable=False),
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
        sa.Column("total_area_m2", sa.Float(), nullable=True),
        sa.Column("effective_area_m2", sa.Float(), nullable=True),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("occupancy", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("status", sa.Text(), server_default="standby", nullable=False),
        sa.Column(
            "facilities",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.Column("managing_unit", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')"
            " AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)",
            name=op.f("ck_shelters_geom"),
        ),
        sa.CheckConstraint(
            "status IN ('standby', 'open', 'full', 'closed')", name=op.f("ck_shelters_status")
        ),
        sa.CheckConstraint(
            "capacity >= 0 AND occupancy >= 0 AND occupancy <= capacity", name=op.f("ck_shelters_occupancy")
        ),
        sa.CheckConstraint(
            "total_area_m2 IS NULL OR effective_area_m2 IS NULL OR effective_area_m2 <= total_area_m2",
            name=op.f("ck_shelters_areas"),
        ),
        sa.ForeignKeyConstraint(
            ["class"], ["shelter_classes.class"], name=op.f("fk_shelters_class_shelter_classes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shelters")),
        sa.UniqueConstraint("code", name=op.f("uq_shelters_code")),
    )
    op.create_index(
        "ix_shelters_geog",
        "shelters",
        [sa.literal_column("(geom::geography)")],
        unique=False,
        postgresql_using="gist",
    )
    op.create_geospatial_index(
        "ix_shelters_geom", "shelters", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_table(
        "hazard_cells",
        sa.Column("hazard_id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_hazard_cells_cell_id_cells"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["hazard_id"],
            ["hazard_points.id"],
            name=op.f("fk_hazard_cells_hazard_id_hazard_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("hazard_id", "cell_id", name=op.f("pk_hazard_cells")),
    )
    op.create_index("ix_hazard_cells_cell", "hazard_cells", ["cell_id"], unique=False)
    op.create_table(
        "shelter_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("shelter_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["shelter_id"],
            ["shelters.id"],
            name=op.f("fk_shelter_history_shelter_id_shelters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shelter_history")),
        sa.UniqueConstraint("shelter_id", "version", name=op.f("uq_shelter_history_shelter_id_version")),
    )
    classes = sa.table(
        "shelter_classes",
        sa.column("class"),
        sa.column("name"),
        sa.column("service_radius_m", sa.Float),
        sa.column("m2_per_person", sa.Float),
    )
    op.bulk_insert(
        classes,
        [dict(zip(("class", "name", "service_radius_m", "m2_per_person"), c, strict=True)) for c in CLASSES],
    )
    op.execute(FUNCTIONS)


def downgrade() -> None:
    # The view must stop depending on hazard tables before they go; 0002's layer refresh is
    # restored by re-running 0002's definition of the function.
    op.execute("DROP VIEW cell_risk_items")
    op.execute(RESTORE_0002.replace("CREATE OR REPLACE VIEW", "CREATE VIEW"))
    op.execute("DROP TRIGGER IF EXISTS hazard_points_history ON hazard_points")
    op.execute("DROP TRIGGER IF EXISTS shelters_history ON shelters")
    op.execute("DROP FUNCTION IF EXISTS record_version_history()")
    op.execute("DROP TRIGGER IF EXISTS hazard_points_status_dates ON hazard_points")
    op.execute("DROP FUNCTION IF EXISTS hazard_points_status_dates()")
    op.execute("DROP TRIGGER IF EXISTS hazard_points_after_update ON hazard_points")
    op.execute("DROP FUNCTION IF EXISTS hazard_points_after_update()")
    op.execute("DROP TRIGGER IF EXISTS hazard_points_after_insert ON hazard_points")
    op.execute("DROP FUNCTION IF EXISTS hazard_points_after_insert()")
    op.execute("DROP FUNCTION IF EXISTS hazard_refresh(bigint[])")
    op.execute(_risk_refresh_layer_0002())
    op.drop_table("shelter_history")
    op.drop_index("ix_hazard_cells_cell", table_name="hazard_cells")
    op.drop_table("hazard_cells")
    op.drop_geospatial_index(
        "ix_shelters_geom", table_name="shelters", postgresql_using="gist", column_name="geom"
    )
    op.drop_index("ix_shelters_geog", table_name="shelters", postgresql_using="gist")
    op.drop_geospatial_table("shelters")
    op.drop_table("hazard_point_history")
    op.drop_table("shelter_classes")
    op.drop_index("ix_hazard_points_kind_status", table_name="hazard_points")
    op.drop_geospatial_index(
        "ix_hazard_points_geom", table_name="hazard_points", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("hazard_points")


def _risk_refresh_layer_0002() -> str:
    """0002's risk_refresh_layer (risk sources only), taken from that migration's text."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("0002_risk_map.py")
    spec = importlib.util.spec_from_file_location("m0002", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = module.FUNCTIONS
    start = text.index("CREATE FUNCTION risk_refresh_layer")
    end = text.index("$$;", start) + 3
    return text[start:end].replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
