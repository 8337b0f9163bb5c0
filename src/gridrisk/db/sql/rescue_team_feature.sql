-- Rescue teams as GeoJSON Features, for the ids given, in that order. `status` reads `deployed`
-- while the team is booked for a work order (`booking` says which); otherwise the status set.
SELECT t.id, t.version,
       json_build_object(
           'type', 'Feature',
           'id', t.id,
           'geometry', ST_AsGeoJSON(t.geom, 7)::json,
           'properties', json_build_object(
               'code', t.code, 'name', t.name, 'team_type', t.team_type, 'sector', t.sector,
               'capabilities', to_json(t.capabilities), 'members', t.members, 'equipment', t.equipment,
               'status', CASE WHEN b.id IS NOT NULL THEN 'deployed' ELSE t.status END,
               'booking', CASE WHEN b.id IS NOT NULL THEN json_build_object(
                   'order_id', b.order_id, 'warning_id', o.warning_id, 'capability', b.capability,
                   'target_name', o.target_name, 'distance_m', round(b.distance_m::numeric, 1),
                   'booked_at', b.booked_at) END,
               'contact_person', t.contact_person, 'contact_phone', t.contact_phone,
               'managing_unit', t.managing_unit, 'address', t.address,
               'district', CASE WHEN t.district_code IS NOT NULL THEN json_build_object(
                   'code', t.district_code,
                   'name', (SELECT d.name FROM cells d WHERE d.layer = 'district' AND d.code = t.district_code))
               END,
               'version', t.version,
               'created_at', t.created_at, 'created_by', t.created_by,
               'updated_at', t.updated_at, 'updated_by', t.updated_by
           )
       )::text AS feature
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN rescue_teams t ON t.id = u.id
LEFT JOIN work_order_teams b ON b.team_id = t.id AND b.released_at IS NULL
LEFT JOIN work_orders o ON o.id = b.order_id
ORDER BY u.ord
