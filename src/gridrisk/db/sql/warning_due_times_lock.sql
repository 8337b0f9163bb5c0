-- Lock the due times for a change and read them (the change records the old values).
SELECT level, due_minutes FROM warning_due_times ORDER BY level FOR UPDATE
