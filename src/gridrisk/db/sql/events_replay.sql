-- One page of retained events after a resume point, for an SSE client's replay (filters as the stream's).
SELECT id, kind, payload->>'layer' AS layer, payload::text AS data
FROM events
WHERE id > %(after)s AND id <= %(upto)s
  AND (%(kinds)s::text[] IS NULL OR kind = ANY(%(kinds)s::text[]))
  AND (%(layer)s::text IS NULL OR payload->>'layer' = %(layer)s::text)
ORDER BY id
LIMIT %(limit)s
