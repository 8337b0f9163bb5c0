-- The risk sources active in a cell at a past moment, from the version history.
WITH versions AS (
    SELECT DISTINCT ON (h.source_id) h.source_id, h.version, h.level, h.status, h.geom, h.at
    FROM risk_source_history h
    WHERE h.at <= %(at)s
    ORDER BY h.source_id, h.version DESC
)
SELECT json_build_object(
    'type', 'Feature', 'id', v.source_id,
    'geometry', ST_AsGeoJSON(v.geom, 7)::json,
    'properties', json_build_object('code', s.code, 'name', s.name, 'category', s.category,
                                    'level', v.level, 'status', v.status, 'version', v.version,
                                    'as_of', v.at)
)::text AS feature
FROM versions v
JOIN risk_sources s ON s.id = v.source_id
JOIN cells c ON c.id = %(cell_id)s
WHERE v.status = 'active' AND ST_Intersects(c.geom, v.geom)
ORDER BY v.source_id
