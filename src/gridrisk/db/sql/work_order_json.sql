-- Work orders as JSON, in the order of the ids given: the warning, the target and where to go,
-- the assigned cell and its workers, who answers for it, the action, the shelter places of an
-- evacuation, the teams and supplies booked for it (and what could not be), status, deadline.
SELECT o.id, o.version, o.layer, o.cell_code,
       json_build_object(
           'id', o.id,
           'warning', json_build_object('id', w.id, 'identifier', w.identifier, 'hazard_type', w.hazard_type,
                                        'level', w.level, 'status', w.status, 'headline', w.headline,
                                        'valid_until', w.valid_until),
           'target', json_build_object('type', o.target_type, 'id', o.target_id, 'kind', o.target_kind,
                                       'code', o.target_code, 'name', o.target_name,
                                       'location', ST_AsGeoJSON(o.geom, 7)::json),
           'cell', json_build_object('layer', o.layer, 'code', o.cell_code, 'name', c.name),
           'district_code', o.district_code,
           'assignees', (SELECT coalesce(json_agg(json_build_object('name', cw.name, 'phone', cw.phone,
                                                                    'has_key', cw.api_key_id IS NOT NULL)
                                                  ORDER BY cw.id), '[]'::json)
                         FROM cell_workers cw WHERE cw.layer = o.layer AND cw.cell_code = o.cell_code),
           'action', o.action,
           'level', o.level,
           'threatened_persons', o.threatened_persons,
           'shelter', CASE WHEN o.action = 'evacuate' THEN json_build_object(
               'id', s.id, 'code', s.code, 'name', s.name, 'class', s.class, 'status', s.status,
               'free', CASE WHEN s.status = 'closed' THEN 0
                            ELSE greatest(s.capacity - s.occupancy - shelter_reserved(s.id), 0) END,
               'distance_m', round(o.shelter_distance_m::numeric, 1),
               'location', ST_AsGeoJSON(ST_PointOnSurface(s.geom), 7)::json,
               'note', o.shelter_note,
               'places', (SELECT coalesce(json_agg(json_build_object(
                                  'shelter_id', r.shelter_id, 'shelter_name', rs.name, 'persons', r.persons,
                                  'checked_in', r.checked_in,
                                  'distance_m', round(r.distance_m::numeric, 1), 'released', r.released_at IS NOT NULL)
                                  ORDER BY r.persons DESC, r.shelter_id), '[]'::json)
                          FROM shelter_reservations r JOIN shelters rs ON rs.id = r.shelter_id
                          WHERE r.order_id = o.id)) END,
           'responsible', json_build_object('person', o.responsible_person, 'phone', o.responsible_phone,
                                            'unit', o.responsible_unit),
           'teams', (SELECT coalesce(json_agg(json_build_object(
                         'team_id', b.team_id, 'name', t.name, 'capability', b.capability,
                         'contact_phone', t.contact_phone, 'distance_m', round(b.distance_m::numeric, 1),
                         'released', b.released_at IS NOT NULL,
                         'location', ST_AsGeoJSON(ST_PointOnSurface(t.geom), 7)::json) ORDER BY b.id), '[]'::json)
                     FROM work_order_teams b JOIN rescue_teams t ON t.id = b.team_id WHERE b.order_id = o.id),
           'supplies', (SELECT coalesce(json_agg(json_build_object(
                            'depot_id', x.depot_id, 'depot_name', d.name, 'item', x.item, 'item_name', i.name,
                            'unit', i.unit, 'quantity', x.quantity, 'distance_m', round(x.distance_m::numeric, 1),
                            'released', x.released_at IS NOT NULL, 'consumed', x.consumed,
                            'location', ST_AsGeoJSON(ST_PointOnSurface(d.geom), 7)::json) ORDER BY x.id), '[]'::json)
                        FROM supply_reservations x
                        JOIN supply_depots d ON d.id = x.depot_id JOIN supply_items i ON i.item = x.item
                        WHERE x.order_id = o.id),
           'match_notes', o.match_notes,
           'status', o.status,
           'allowed_next', CASE o.status
               WHEN 'open' THEN json_build_array('acknowledged', 'cancelled')
               WHEN 'acknowledged' THEN json_build_array('in_progress', 'cancelled')
               WHEN 'in_progress' THEN json_build_array('done', 'cancelled')
               ELSE json_build_array() END,
           'due_at', o.due_at,
           'overdue', o.status IN ('open', 'acknowledged', 'in_progress') AND o.due_at < now(),
           'acknowledged_at', o.acknowledged_at,
           'done', CASE WHEN o.status = 'done' THEN json_build_object(
               'at', o.done_at, 'by', o.done_by, 'note', o.done_note, 'photo_url', o.photo_url,
               'location', ST_AsGeoJSON(o.done_location, 7)::json,
               'distance_m', round(o.done_distance_m::numeric, 1)) END,
           'cancelled', CASE WHEN o.status = 'cancelled' THEN json_build_object(
               'at', o.cancelled_at, 'cause', o.cancel_cause, 'reason', o.cancel_reason) END,
           'version', o.version,
           'created_at', o.created_at,
           'updated_at', o.updated_at,
           'updated_by', o.updated_by
       )::text AS body
FROM unnest(%(ids)s::bigint[]) WITH ORDINALITY AS u(id, ord)
JOIN work_orders o ON o.id = u.id
JOIN warnings w ON w.id = o.warning_id
LEFT JOIN cells c ON c.layer = o.layer AND c.code = o.cell_code
LEFT JOIN shelters s ON s.id = o.shelter_id
ORDER BY u.ord
