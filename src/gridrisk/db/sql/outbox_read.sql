-- The outbox reader's query when no id is missing (the usual case): a page of the events after the
-- newest id read, in id order. Per event: the layer in its payload (the SSE ?layer= filter), the
-- layer or collection it concerns, the payload as text and a colour event's cell box (a
-- feature_changed payload holds its own boxes, one per row). The first column is
-- outbox_read_gaps.sql's list of running transactions, not asked for here.
SELECT NULL::bigint[] AS xids, e.id, e.kind,
       e.payload->>'layer' AS layer,
       coalesce(e.payload->>'layer', e.payload->>'collection') AS target,
       e.payload::text AS data,
       CASE WHEN e.kind = 'cell_colour' THEN (
           SELECT ARRAY[ST_XMin(c.geom), ST_YMin(c.geom), ST_XMax(c.geom), ST_YMax(c.geom)]
           FROM cells c WHERE c.layer = e.payload->>'layer' AND c.code = e.payload->>'code'
       ) END AS cell_box
FROM events e
WHERE e.id > %(after)s
ORDER BY e.id
LIMIT 1000
