-- One status change of a hazard point: a new version; the BEFORE trigger stamps status_dates[to],
-- the AFTER triggers recolour its cells and write the history row (annotated by hazard_transition_note).
UPDATE hazard_points
SET status = %(to)s, version = version + 1, updated_at = now(), updated_by = %(who)s
WHERE id = %(id)s
