"""Spatial logic (lookup, overlay, risk map, coverage, targeting); free of FastAPI so the CLI reuses it."""
