-- The outbox reader's one query per read: the events after the newest id read (a page of them),
-- plus the ids still missing below it (they may commit late), in id order. Per event: the layer in
-- its payload (the SSE ?layer= filter), the layer or collection it concerns, the payload as text
-- and a colour event's cell box (a feature_changed payload holds its own boxes, one per row).
-- One row with NULL id when nothing is new. When asked, also the transactions of this database
-- running now, read after this statement's snapshot: any of them may still commit an id.
SELECT x.xids, e.id, e.kind, e.layer, e.target, e.data, e.cell_box
FROM (
    SELECT CASE WHEN %(want_xids)s::boolean THEN (
        SELECT coalesce(array_agg(backend_xid::text::bigint), '{}') FROM pg_stat_activity
        WHERE datname = current_database() AND backend_xid IS NOT NULL
    ) END AS xids
) x
LEFT JOIN LATERAL (
    SELECT e.id, e.kind,
           e.payload->>'layer' AS layer,
           coalesce(e.payload->>'layer', e.payload->>'collection') AS target,
           e.payload::text AS data,
           CASE WHEN e.kind = 'cell_colour' THEN (
               SELECT ARRAY[ST_XMin(c.geom), ST_YMin(c.geom), ST_XMax(c.geom), ST_YMax(c.geom)]
               FROM cells c WHERE c.layer = e.payload->>'layer' AND c.code = e.payload->>'code'
           ) END AS cell_box
    FROM (
        (SELECT * FROM events WHERE id > %(after)s ORDER BY id LIMIT 1000)
        UNION ALL
        SELECT * FROM events WHERE id = ANY(%(missing)s::bigint[]) AND id <= %(after)s
    ) e
) e ON true
ORDER BY e.id
