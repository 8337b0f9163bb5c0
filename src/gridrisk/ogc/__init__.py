"""OGC API – Features (Part 1: Core, GeoJSON, HTML, OpenAPI 3.0) under /ogc, for GIS clients.

- `routes.py`: the router; each route checks its request, runs what collections.py composes and
  answers in JSON or HTML.
- `collections.py`: the collections served and the SQL that answers them, from one registry.
- `query.py`: what a request asks: its format, its query parameters (each described once, for
  both OpenAPI documents), the statement of an items page.
- `times.py`: the `datetime` parameter.
- `documents.py`: the JSON answers: links, collection descriptions, pages of items, JSON Schemas.
- `html.py` and `templates/`: the pages for a person (Chinese first, English beside it).
- `openapi.py`: the OpenAPI 3.0 document at /ogc/api, generated from the routes, models and registry.
- `models.py`: the constants of the standard and the shapes of the JSON answers.
"""
