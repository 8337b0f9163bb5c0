-- What the health check reports: the PostGIS and PostgreSQL versions and the migration revision.
SELECT postgis_lib_version() AS postgis, current_setting('server_version') AS postgres,
       (SELECT version_num FROM alembic_version LIMIT 1) AS revision
