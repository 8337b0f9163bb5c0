-- The time a worker has for an order, by the warning's level.
SELECT level, due_minutes FROM warning_due_times
