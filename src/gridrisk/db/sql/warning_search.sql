-- Warnings matching the filters, newest first: how many, and the ids of one page.
-- status: active (and not yet expired), expired (active but past valid_until), or cancelled.
WITH m AS (
    SELECT w.id, w.sent
    FROM warnings w
    WHERE (%(status)s::text IS NULL
           OR (%(status)s = 'active' AND w.status = 'active' AND w.valid_until > now())
           OR (%(status)s = 'expired' AND w.status = 'active' AND w.valid_until <= now())
           OR (%(status)s = 'cancelled' AND w.status = 'cancelled'))
      AND (%(hazard_type)s::text IS NULL OR w.hazard_type = %(hazard_type)s)
      AND (%(level)s::text IS NULL OR w.level = %(level)s)
      AND (%(bbox)s::float8[] IS NULL
           OR w.area && ST_MakeEnvelope((%(bbox)s::float8[])[1], (%(bbox)s::float8[])[2],
                                        (%(bbox)s::float8[])[3], (%(bbox)s::float8[])[4], 4326))
)
SELECT (SELECT count(*) FROM m)::int AS matched,
       ARRAY(SELECT id FROM m ORDER BY sent DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s) AS ids
