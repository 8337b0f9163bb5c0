"""Database access: the async pool, the schema (GeoAlchemy2 tables), migrations and the SQL files."""
