"""Foundation schema: API keys, layers and their cells, the city outline, workers and the crosswalk.

Revision ID: 0001
Revises:
Create Date: 2026-11-29 05:05:58.548366
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The layers every deployment has; grids are filled by import or the demo build.
LAYERS = [
    ("district", "admin", "Districts (区)", "Administrative districts"),
    ("street", "admin", "Streets and towns (街镇)", "Administrative streets/towns"),
    ("community", "admin", "Communities (社区)", "Administrative communities"),
    ("comprehensive", "grid", "Comprehensive grid (综合网格)", "Social-governance grid"),
    ("emergency", "grid", "Emergency grid (应急格)", "Cells that organise emergency response"),
    ("safety", "grid", "Safety-supervision grid (安监格)", "Cells for safety inspection"),
]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'operator', 'worker', 'viewer')", name=op.f("ck_api_keys_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_geospatial_table(
        "city_parts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_city_parts")),
    )
    op.create_geospatial_index(
        "ix_city_parts_geom",
        "city_parts",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_table(
        "layer_imports",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("cell_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layer_imports")),
    )
    op.create_table(
        "layers",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column(
            "stats",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('grid', 'admin')", name=op.f("ck_layers_kind")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_layers")),
    )
    op.create_geospatial_table(
        "cells",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("population", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.Column("street_code", sa.Text(), nullable=True),
        sa.Column("community_code", sa.Text(), nullable=True),
        sa.Column(
            "props",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("NOT ST_IsEmpty(geom) AND ST_IsValid(geom)", name=op.f("ck_cells_geom_valid")),
        sa.CheckConstraint("area_m2 >= 0", name=op.f("ck_cells_area")),
        sa.CheckConstraint("population >= 0", name=op.f("ck_cells_population")),
        sa.ForeignKeyConstraint(
            ["layer"], ["layers.name"], name=op.f("fk_cells_layer_layers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cells")),
        sa.UniqueConstraint("layer", "code", name=op.f("uq_cells_layer_code")),
    )
    op.create_geospatial_index(
        "ix_cells_geom", "cells", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_cells_layer_district", "cells", ["layer", "district_code"], unique=False)
    op.create_table(
        "cell_overlaps",
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("other_layer", sa.Text(), nullable=False),
        sa.Column("other_code", sa.Text(), nullable=False),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("other_share", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer", "code"],
            ["cells.layer", "cells.code"],
            name="fk_cell_overlaps_cell",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["other_layer", "other_code"],
            ["cells.layer", "cells.code"],
            name="fk_cell_overlaps_other",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("layer", "code", "other_layer", "other_code", name=op.f("pk_cell_overlaps")),
    )
    op.create_index("ix_cell_overlaps_other", "cell_overlaps", ["other_layer", "other_code"], unique=False)
    op.create_table(
        "cell_workers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("cell_code", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("api_key_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_cell_workers_api_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["layer", "cell_code"],
            ["cells.layer", "cells.code"],
            name="fk_cell_workers_cell",
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_workers")),
    )
    op.create_index("ix_cell_workers_api_key", "cell_workers", ["api_key_id"], unique=False)
    op.create_index("ix_cell_workers_cell", "cell_workers", ["layer", "cell_code"], unique=False)
    op.create_geospatial_table(
        "cell_pieces",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(geometry_type="POLYGON", srid=4326, spatial_index=False, nullable=False),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["cells.id"], name=op.f("fk_cell_pieces_cell_id_cells"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_pieces")),
    )
    op.create_geospatial_index(
        "ix_cell_pieces_geom",
        "cell_pieces",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index("ix_cell_pieces_cell", "cell_pieces", ["cell_id"], unique=False)
    layers = sa.table(
        "layers", sa.column("name"), sa.column("kind"), sa.column("title"), sa.column("description")
    )
    op.bulk_insert(
        layers,
        [dict(zip(("name", "kind", "title", "description"), row, strict=True)) for row in LAYERS],
    )


def downgrade() -> None:
    # The postgis extension stays: other schemas in the database may use it.
    op.drop_index("ix_cell_pieces_cell", table_name="cell_pieces")
    op.drop_geospatial_index(
        "ix_cell_pieces_geom", table_name="cell_pieces", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("cell_pieces")
    op.drop_index("ix_cell_workers_cell", table_name="cell_workers")
    op.drop_index("ix_cell_workers_api_key", table_name="cell_workers")
    op.drop_table("cell_workers")
    op.drop_index("ix_cell_overlaps_other", table_name="cell_overlaps")
    op.drop_table("cell_overlaps")
    op.drop_index("ix_cells_layer_district", table_name="cells")
    op.drop_geospatial_index("ix_cells_geom", table_name="cells", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("cells")
    op.drop_table("layers")
    op.drop_table("layer_imports")
    op.drop_geospatial_index(
        "ix_city_parts_geom", table_name="city_parts", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("city_parts")
    op.drop_table("api_keys")
