-- Hazard points as GeoJSON Features, with their district and the cells of every layer they lie
-- in (a polygon lies in several cells per layer), for the ids given, in that order.
SELECT h.id, h.version,
       json_build_object(
           'type', 'Feature',
           'id', h.id,
           'geometry', ST_AsGeoJSON(h.geom, 7)::json,
           'properties', json_build_object(
               'code', h.code, 'name', h.name, 'kind', h.kind, 'level', h.level,
               'status', h.status, 'status_dates', h.status_dates,
               'on_map', h.status NOT IN ('remediated', 'closed'),
               'threatened_persons', h.threatened_persons,
               'property_value', h.property_value, 'property_value_unit', '10,000 yuan',
               'responsible_person', h.responsible_person, 'responsible_unit', h.responsible_unit,
               'notes', h.notes, 'address', h.address,
               'district', CASE WHEN h.district_code IS NOT NULL THEN json_build_object(
                   'code', h.district_code,
                   'name', (SELECT d.name FROM cells d WHERE d.layer = 'district' AND d.code = h.district_code))
               END,
               'version', h.version,
               'created_at', h.created_at, 'created_by', h.created_by,
               'updated_at', h.updated_at, 'updated_by', h.updated_by,
               'cells', (SELECT coalesce(json_object_agg(layer, codes ORDER BY layer), '{}'::json)
                         FROM (SELECT hc.layer, json_agg(c.code ORDER BY c.code) AS codes
                               FROM hazard_cells hc JOIN cells c ON c.id = hc.cell_id
                               WHERE hc.hazard_id = h.id GROUP BY hc.layer) per_layer)
           )
       )::text AS feature
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN hazard_points h ON h.id = u.id
ORDER BY u.ord
