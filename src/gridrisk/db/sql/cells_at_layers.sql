-- The layers /cells/at answers for, in the order its answer lists them (by name, as cells_at.sql
-- aggregates them), with the version every re-import bumps.
SELECT name, kind, version FROM layers ORDER BY name
