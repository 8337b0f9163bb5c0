"""Load the hot PostGIS queries kept as .sql files beside this module, once each."""

from functools import cache
from importlib import resources


@cache
def sql(name: str) -> str:
    """Return the text of db/sql/NAME.sql (cached: the files never change at run time)."""
    return resources.files("gridrisk.db").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")
