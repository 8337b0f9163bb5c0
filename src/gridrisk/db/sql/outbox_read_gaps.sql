-- The outbox reader's query while ids are missing (they may still commit) or writers are waited
-- for: outbox_read.sql's page of new events plus the missing ids that have committed since, in id
-- order (one row with NULL id when there is neither), and the transactions of this database
-- running now, read after this statement's snapshot: any of them may still commit an id.
SELECT x.xids, e.id, e.kind, e.layer, e.target, e.data, e.cell_box
FROM (
    SELECT coalesce(array_agg(backend_xid::text::bigint), '{}') AS xids FROM pg_stat_activity
    WHERE datname = current_database() AND backend_xid IS NOT NULL
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
