-- Warnings as GeoJSON Features (the area, the warning's fields, its orders by status), in the
-- order of the ids given.
SELECT w.id, w.version,
       json_build_object(
           'type', 'Feature',
           'id', w.id,
           'geometry', ST_AsGeoJSON(w.area, 6)::json,
           'properties', json_build_object(
               'identifier', w.identifier, 'sender', w.sender, 'sent', w.sent,
               'hazard_type', w.hazard_type, 'level', w.level, 'status', w.status,
               'expired', w.valid_until <= now(),
               'valid_from', w.valid_from, 'valid_until', w.valid_until,
               'headline', w.headline, 'source', w.source, 'area_spec', w.area_spec,
               'version', w.version, 'updated_at', w.updated_at,
               'orders', (SELECT json_build_object(
                              'total', count(*),
                              'open', count(*) FILTER (WHERE o.status = 'open'),
                              'acknowledged', count(*) FILTER (WHERE o.status = 'acknowledged'),
                              'in_progress', count(*) FILTER (WHERE o.status = 'in_progress'),
                              'done', count(*) FILTER (WHERE o.status = 'done'),
                              'cancelled', count(*) FILTER (WHERE o.status = 'cancelled'),
                              'overdue', count(*) FILTER (WHERE o.status IN ('open', 'acknowledged', 'in_progress')
                                                          AND o.due_at < now()))
                          FROM work_orders o WHERE o.warning_id = w.id))
       )::text AS feature
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN warnings w ON w.id = u.id
ORDER BY u.ord
