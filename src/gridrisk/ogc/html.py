"""HTML views of /ogc: plain pages for a person browsing the API, from the templates in ogc/templates/.

The users read Chinese first: headings and labels are Chinese with the English beside them; the
data (names, descriptions) is shown as stored. Autoescaping is on for every template, so a value
from the database can never become markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse


def _cell(value: Any) -> str:
    """A property value in a table cell: nothing for null, JSON for objects and arrays."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=StrictUndefined,
)
_ENV.filters.update(cell=_cell)


def render(template: str, *, base: str, links: list[dict], **context: Any) -> HTMLResponse:
    """The page TEMPLATE; BASE is the URL of /ogc, LINKS the page's links (the alternates go in its head)."""
    return HTMLResponse(_ENV.get_template(template).render(base=base, links=links, **context))
