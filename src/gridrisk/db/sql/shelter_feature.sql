-- Shelters as GeoJSON Features, for the ids given, in that order. `free` is the places left
-- (none in a closed shelter); `warnings` flag figures below the national standard or inconsistent.
SELECT s.id, s.version,
       json_build_object(
           'type', 'Feature',
           'id', s.id,
           'geometry', ST_AsGeoJSON(s.geom, 7)::json,
           'properties', json_build_object(
               'code', s.code, 'name', s.name,
               'class', s.class, 'class_name', k.name, 'service_radius_m', k.service_radius_m,
               'total_area_m2', s.total_area_m2, 'effective_area_m2', s.effective_area_m2,
               'capacity', s.capacity, 'occupancy', s.occupancy,
               'free', CASE WHEN s.status = 'closed' THEN 0
                            ELSE greatest(s.capacity - s.occupancy - shelter_reserved(s.id), 0) END,
               'reserved', shelter_reserved(s.id),
               'status', s.status, 'facilities', s.facilities,
               'address', s.address,
               'district', CASE WHEN s.district_code IS NOT NULL THEN json_build_object(
                   'code', s.district_code,
                   'name', (SELECT d.name FROM cells d WHERE d.layer = 'district' AND d.code = s.district_code))
               END,
               'managing_unit', s.managing_unit,
               'warnings', to_json(array_remove(ARRAY[
                   CASE WHEN s.effective_area_m2 < k.min_effective_area_m2 THEN format(
                       'The effective area (%%s m²) is below the %%s m² the national standard asks of a '
                       'shelter site.', s.effective_area_m2, k.min_effective_area_m2) END,
                   CASE WHEN s.capacity > floor(s.effective_area_m2 / k.m2_per_person + 1e-9) THEN format(
                       'The capacity (%%s) is more than the effective area holds at %%s m² per person (%%s).',
                       s.capacity, k.m2_per_person, floor(s.effective_area_m2 / k.m2_per_person + 1e-9)) END
               ], NULL)),
               'version', s.version,
               'created_at', s.created_at, 'created_by', s.created_by,
               'updated_at', s.updated_at, 'updated_by', s.updated_by
           )
       )::text AS feature
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN shelters s ON s.id = u.id
JOIN shelter_classes k ON k.class = s.class
ORDER BY u.ord
