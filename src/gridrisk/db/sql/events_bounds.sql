-- What a resume point can be compared with: is its row still there, the oldest retained row, and
-- the last id ever drawn.
SELECT EXISTS (SELECT 1 FROM events WHERE id = %(resume)s) AS present,
       (SELECT min(id) FROM events) AS oldest,
       pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass) AS newest
