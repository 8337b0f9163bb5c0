-- Re-assess every risk source of one method: the row trigger recomputes each level under the
-- thresholds in force, the statement trigger recolours the cells whose sources changed level.
UPDATE risk_sources SET method = method WHERE method = %(method)s
