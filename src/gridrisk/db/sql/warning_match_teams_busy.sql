-- Of the teams locked, those booked (read after the lock: a booking committed meanwhile is seen).
SELECT team_id FROM work_order_teams WHERE released_at IS NULL AND team_id = ANY(%(ids)s)
