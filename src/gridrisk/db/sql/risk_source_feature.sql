-- Risk sources as GeoJSON Features (with their cells per layer), for the ids given in order.
SELECT s.id, s.version,
       json_build_object(
           'type', 'Feature',
           'id', s.id,
           'geometry', ST_AsGeoJSON(s.geom, 7)::json,
           'properties', json_build_object(
               'code', s.code, 'name', s.name, 'category', s.category,
               'address', s.address, 'plate_code', s.plate_code,
               'enterprise', s.enterprise, 'department', s.department, 'persons', s.persons,
               'assessment', json_build_object(
                   'method', s.method, 'L', s.l, 'E', s.e, 'C', s.c, 'S', s.s, 'score', s.score,
                   'computed_level', s.computed_level),
               'override', CASE WHEN s.override_level IS NOT NULL AND s.method <> 'direct'
                                THEN json_build_object('level', s.override_level, 'reason', s.override_reason) END,
               'reason', CASE WHEN s.method = 'direct' THEN s.override_reason END,
               'level', s.level, 'status', s.status, 'version', s.version,
               'created_at', s.created_at, 'created_by', s.created_by,
               'updated_at', s.updated_at, 'updated_by', s.updated_by,
               'cells', (SELECT coalesce(json_object_agg(sc.layer, c.code ORDER BY sc.layer), '{}'::json)
                         FROM (SELECT DISTINCT ON (sc.layer) sc.layer, sc.cell_id FROM source_cells sc
                               JOIN cells c2 ON c2.id = sc.cell_id
                               WHERE sc.source_id = s.id ORDER BY sc.layer, c2.code) sc
                         JOIN cells c ON c.id = sc.cell_id)
           )
       )::text AS feature
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN risk_sources s ON s.id = u.id
ORDER BY u.ord
