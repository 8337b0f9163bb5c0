-- What the tile caches must evict: outbox rows after the newest applied id, plus the ids still
-- missing below it (they may commit late). Per row: which layer or collection changed and the
-- lon/lat boxes that changed (a colour event's box is its cell's; NULL boxes mean "the whole
-- collection"). One row with NULL id when nothing is new. When asked, also the transactions of this
-- database running now, read after this statement's snapshot: any of them may still commit an id.
SELECT m.max_id, x.xids, e.id, e.kind, e.target, e.cell_box, e.boxes
FROM (SELECT max(id) AS max_id FROM events) m
CROSS JOIN (
    SELECT CASE WHEN %(want_xids)s::boolean THEN (
        SELECT coalesce(array_agg(backend_xid::text::bigint), '{}') FROM pg_stat_activity
        WHERE datname = current_database() AND backend_xid IS NOT NULL
    ) END AS xids
) x
LEFT JOIN LATERAL (
    SELECT e.id, e.kind,
           coalesce(e.payload->>'layer', e.payload->>'collection') AS target,
           CASE WHEN e.kind = 'cell_colour' THEN (
               SELECT ARRAY[ST_XMin(c.geom), ST_YMin(c.geom), ST_XMax(c.geom), ST_YMax(c.geom)]
               FROM cells c WHERE c.layer = e.payload->>'layer' AND c.code = e.payload->>'code'
           ) END AS cell_box,
           CASE WHEN e.kind = 'feature_changed' THEN e.payload->'bbox' END AS boxes
    FROM (
        (SELECT * FROM events WHERE id > %(after)s ORDER BY id LIMIT 1000)
        UNION ALL
        SELECT * FROM events WHERE id = ANY(%(missing)s::bigint[]) AND id <= %(after)s
    ) e
) e ON true
ORDER BY e.id
