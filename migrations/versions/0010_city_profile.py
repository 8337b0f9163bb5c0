"""The city profile: the city's name and the metric CRS every area is measured in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 15:20:00

Until 0009 areas were computed in EPSG:4549 (CGCS2000 3-degree Gauss-Kruger CM 120E) wherever the
city was: right for Nanjing, 6% off in area at Chengdu and 18% at Urumqi. From here the profile
names the CRS (geometry/metric_crs.py picks the zone nearest the districts' centre when they load).
Every database so far serves the Nanjing demo, so the row starts as Nanjing's: its CM 120E zone,
which loading another city's districts replaces (and re-measures the stored areas with).
Reaching the head also applies the functions' current source: among them a bulk reassignment
(fresh_item_cells) that can run in parallel and recomputes without JIT compilation.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE TABLE city_profile (
    id boolean DEFAULT true NOT NULL,
    name text NOT NULL,
    name_en text,
    metric_srid integer NOT NULL,
    metric_crs_auto boolean DEFAULT true NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT pk_city_profile PRIMARY KEY (id),
    CONSTRAINT ck_city_profile_one_row CHECK (id)
);
INSERT INTO city_profile (name, name_en, metric_srid) VALUES ('南京市', 'Nanjing', 4549);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP TABLE city_profile")
