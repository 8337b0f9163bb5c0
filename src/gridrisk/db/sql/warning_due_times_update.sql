-- Set the due times of the given levels (parallel arrays of levels and minutes).
UPDATE warning_due_times d SET due_minutes = n.m, updated_at = now(), updated_by = %(by)s
FROM unnest(%(levels)s::text[], %(minutes)s::int[]) AS n(level, m)
WHERE d.level = n.level
