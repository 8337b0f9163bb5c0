-- Whether a warning exists (one row) or not (no row).
SELECT 1 FROM warnings WHERE id = %(warning_id)s
