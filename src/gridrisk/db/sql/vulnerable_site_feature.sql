-- Vulnerable sites as GeoJSON Features, for the ids given, in that order, with the work orders of
-- live warnings that target them.
SELECT v.id, v.version,
       json_build_object(
           'type', 'Feature',
           'id', v.id,
           'geometry', ST_AsGeoJSON(v.geom, 7)::json,
           'properties', json_build_object(
               'code', v.code, 'name', v.name, 'kind', v.kind,
               'persons', v.persons, 'persons_assisted', v.persons_assisted,
               'contact_person', v.contact_person, 'contact_phone', v.contact_phone,
               'responsible_unit', v.responsible_unit, 'address', v.address,
               'district', CASE WHEN v.district_code IS NOT NULL THEN json_build_object(
                   'code', v.district_code,
                   'name', (SELECT d.name FROM cells d WHERE d.layer = 'district' AND d.code = v.district_code))
               END,
               'status', v.status,
               'open_orders', (SELECT coalesce(json_agg(json_build_object(
                                   'id', o.id, 'warning_id', o.warning_id, 'action', o.action, 'status', o.status)
                                   ORDER BY o.id), '[]'::json)
                               FROM work_orders o
                               WHERE o.target_type = 'vulnerable_site' AND o.target_id = v.id
                                 AND o.status IN ('open', 'acknowledged', 'in_progress')),
               'version', v.version,
               'created_at', v.created_at, 'created_by', v.created_by,
               'updated_at', v.updated_at, 'updated_by', v.updated_by
           )
       )::text AS feature
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN vulnerable_sites v ON v.id = u.id
ORDER BY u.ord
