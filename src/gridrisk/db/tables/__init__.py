"""The schema as GeoAlchemy2 tables: the single source Alembic migrations are written from.

One module per concern; importing the package registers every table on `metadata`.
"""

from gridrisk.db.tables import (  # noqa: F401  (register)
    grids,
    registries,
    response_resources,
    risk_map,
    targeted_warnings,
    webhooks,
)
from gridrisk.db.tables.base import metadata

__all__ = ["metadata"]
