-- What warning %(warning_id)s committed: each team booked (where it is, for which order) and each
-- depot's supplies reserved (live) or drawn (orders done), per item, for the report and the map.
WITH lines AS (
    SELECT x.depot_id, x.item, x.order_id, x.quantity, x.consumed, x.released_at
    FROM supply_reservations x JOIN work_orders o ON o.id = x.order_id
    WHERE o.warning_id = %(warning_id)s
),
per_depot AS (
    SELECT p.depot_id,
           json_object_agg(p.item, json_build_object('name', i.name, 'unit', i.unit, 'reserved', p.reserved,
                                                     'consumed', p.consumed) ORDER BY p.item) AS items
    FROM (SELECT depot_id, item,
                 coalesce(sum(quantity) FILTER (WHERE released_at IS NULL), 0)::int AS reserved,
                 sum(consumed)::int AS consumed
          FROM lines GROUP BY depot_id, item) p
    JOIN supply_items i ON i.item = p.item
    GROUP BY p.depot_id
)
SELECT json_build_object(
    'teams', (SELECT coalesce(json_agg(json_build_object(
                  'team_id', t.id, 'code', t.code, 'name', t.name, 'capability', b.capability,
                  'order_id', o.id, 'target_name', o.target_name, 'target', ST_AsGeoJSON(o.geom, 7)::json,
                  'location', ST_AsGeoJSON(ST_PointOnSurface(t.geom), 7)::json,
                  'distance_m', round(b.distance_m::numeric, 1), 'released', b.released_at IS NOT NULL)
                  ORDER BY b.id), '[]'::json)
              FROM work_order_teams b
              JOIN work_orders o ON o.id = b.order_id AND o.warning_id = %(warning_id)s
              JOIN rescue_teams t ON t.id = b.team_id),
    'supplies', (SELECT coalesce(json_agg(json_build_object(
                     'depot_id', d.id, 'code', d.code, 'name', d.name, 'level', d.level,
                     'location', ST_AsGeoJSON(ST_PointOnSurface(d.geom), 7)::json, 'items', p.items,
                     'orders', (SELECT count(DISTINCT l.order_id) FROM lines l WHERE l.depot_id = d.id))
                     ORDER BY d.id), '[]'::json)
                 FROM per_depot p JOIN supply_depots d ON d.id = p.depot_id)
)::text AS body
