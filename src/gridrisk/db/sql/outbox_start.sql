-- Where the outbox reader starts: the newest id (for an empty outbox, the last one drawn), a floor
-- below which every id was drawn before %(cut)s (so before any transaction still running began:
-- all committed or dead), and the ids visible between them (NULL when more than %(span)s apart).
-- The ids in between that are not visible may still commit: the reader asks for them until their
-- writers have ended.
WITH m AS (
    SELECT coalesce((SELECT max(id) FROM events),
                    pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass), 0) AS newest
),
f AS (
    SELECT coalesce((SELECT e.id FROM events e WHERE e.id <= m.newest AND e.at < %(cut)s
                     ORDER BY e.id DESC LIMIT 1), 0) AS floor
    FROM m
)
SELECT m.newest, f.floor,
       CASE WHEN m.newest - f.floor <= %(span)s
            THEN ARRAY(SELECT e.id FROM events e WHERE e.id > f.floor AND e.id <= m.newest ORDER BY e.id)
       END AS seen
FROM m, f
