-- Supply depots as GeoJSON Features, for the ids given, in that order. `stock` gives per item what
-- the depot holds, what live work orders have reserved of it, and what is free.
SELECT d.id, d.version,
       json_build_object(
           'type', 'Feature',
           'id', d.id,
           'geometry', ST_AsGeoJSON(d.geom, 7)::json,
           'properties', json_build_object(
               'code', d.code, 'name', d.name, 'level', d.level, 'area_m2', d.area_m2,
               'stock', (SELECT coalesce(json_object_agg(s.key, json_build_object(
                                   'name', i.name, 'unit', i.unit, 'quantity', s.value::int,
                                   'reserved', coalesce(r.reserved, 0),
                                   'free', s.value::int - coalesce(r.reserved, 0)) ORDER BY s.key), '{}'::json)
                         FROM jsonb_each_text(d.stock) s
                         LEFT JOIN supply_items i ON i.item = s.key
                         LEFT JOIN LATERAL (
                             SELECT sum(x.quantity)::int AS reserved FROM supply_reservations x
                             WHERE x.depot_id = d.id AND x.item = s.key AND x.released_at IS NULL) r ON true),
               'contact_person', d.contact_person, 'contact_phone', d.contact_phone,
               'managing_unit', d.managing_unit, 'address', d.address,
               'district', CASE WHEN d.district_code IS NOT NULL THEN json_build_object(
                   'code', d.district_code,
                   'name', (SELECT c.name FROM cells c WHERE c.layer = 'district' AND c.code = d.district_code))
               END,
               'status', d.status,
               'version', d.version,
               'created_at', d.created_at, 'created_by', d.created_by,
               'updated_at', d.updated_at, 'updated_by', d.updated_by
           )
       )::text AS feature
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN supply_depots d ON d.id = u.id
ORDER BY u.ord
