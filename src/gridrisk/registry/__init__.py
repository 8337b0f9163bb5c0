"""Feature registries (risk sources, shelters, hazard points, ...) built from one description each.

`kind.FeatureKind` describes a registry; `routes` derives its HTTP API, `bulk` its import, `cli` its
`gridrisk <kind> import` command; `ogc.collections` and `tiles.mvt` read its publishing. Each kind is
one module here (its description and its named extensions); `catalog.KINDS` lists them.
"""
