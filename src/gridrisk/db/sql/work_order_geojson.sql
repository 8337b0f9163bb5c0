-- A warning's work orders as a GeoJSON FeatureCollection for the map: one point per target,
-- with what a map colours and labels by (status, action, overdue) and nothing personal.
-- scope_key limits them to the cells the key is linked to (a worker sees its own cells).
WITH f AS (
    SELECT o.id, json_build_object(
        'type', 'Feature',
        'id', o.id,
        'geometry', ST_AsGeoJSON(o.geom, 7)::json,
        'properties', json_build_object(
            'status', o.status, 'action', o.action, 'level', o.level,
            'overdue', o.status IN ('open', 'acknowledged', 'in_progress') AND o.due_at < now(),
            'due_at', o.due_at,
            'target_type', o.target_type, 'target_kind', o.target_kind, 'target_id', o.target_id,
            'target_code', o.target_code, 'target_name', o.target_name,
            'cell', o.cell_code, 'threatened_persons', o.threatened_persons,
            'shelter_id', o.shelter_id, 'version', o.version)
    ) AS feature
    FROM work_orders o
    WHERE o.warning_id = %(warning_id)s
      AND (%(statuses)s::text[] IS NULL OR o.status = ANY(%(statuses)s::text[]))
      AND (%(scope_key)s::bigint IS NULL OR EXISTS (
           SELECT 1 FROM cell_workers cw
           WHERE cw.api_key_id = %(scope_key)s AND cw.layer = o.layer AND cw.cell_code = o.cell_code))
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'warning', (SELECT json_build_object('id', w.id, 'identifier', w.identifier, 'hazard_type', w.hazard_type,
                                         'level', w.level, 'status', w.status)
                FROM warnings w WHERE w.id = %(warning_id)s),
    'numberReturned', (SELECT count(*) FROM f),
    'features', (SELECT coalesce(json_agg(f.feature ORDER BY f.id), '[]'::json) FROM f)
)::text AS body
