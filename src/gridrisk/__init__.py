"""gridrisk: a city's three risk grids, its four-colour risk map and a spatial REST API on PostGIS."""

__version__ = "0.1.0"
