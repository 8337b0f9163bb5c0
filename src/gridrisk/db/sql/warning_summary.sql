-- One warning as JSON: its fields and area, the cells it covers per layer, its targets by kind, its
-- orders by status and action, the closure rate (done ÷ orders not cancelled), overdue orders, and
-- the evacuation it ordered (people, places reserved, and per shelter the people it holds places
-- for, against its room).
WITH w AS (
    SELECT * FROM warnings WHERE id = %(warning_id)s
),
o AS (
    SELECT o.*, o.status IN ('open', 'acknowledged', 'in_progress') AS active
    FROM work_orders o WHERE o.warning_id = %(warning_id)s
),
counts AS (
    SELECT count(*)::int AS total,
           count(*) FILTER (WHERE status = 'open')::int AS open,
           count(*) FILTER (WHERE status = 'acknowledged')::int AS acknowledged,
           count(*) FILTER (WHERE status = 'in_progress')::int AS in_progress,
           count(*) FILTER (WHERE status = 'done')::int AS done,
           count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
           count(*) FILTER (WHERE active AND due_at < now())::int AS overdue,
           count(*) FILTER (WHERE status <> 'cancelled' AND cell_code IS NULL)::int AS without_cell,
           count(DISTINCT cell_code) FILTER (WHERE status <> 'cancelled')::int AS cells_with_orders
    FROM o
),
by_action AS (
    SELECT coalesce(json_object_agg(action, n ORDER BY action), '{}'::json) AS j
    FROM (SELECT action, count(*)::int AS n FROM o WHERE status <> 'cancelled' GROUP BY action) x
),
by_kind AS (
    SELECT coalesce(json_object_agg(target_type, kinds ORDER BY target_type), '{}'::json) AS j
    FROM (SELECT target_type, json_object_agg(target_kind, n ORDER BY target_kind) AS kinds
          FROM (SELECT target_type, target_kind, count(*)::int AS n FROM o WHERE status <> 'cancelled'
                GROUP BY target_type, target_kind) k
          GROUP BY target_type) t
),
-- Places are what the matching reserved for live evacuation orders (warning_matching.py).
placed AS (
    SELECT r.order_id, r.shelter_id, r.persons
    FROM shelter_reservations r JOIN o ON o.id = r.order_id
    WHERE r.released_at IS NULL
),
evac AS (
    SELECT count(*)::int AS orders,
           coalesce(sum(threatened_persons), 0)::int AS persons,
           coalesce(sum(p.persons), 0)::int AS placed,
           count(*) FILTER (WHERE active AND threatened_persons > coalesce(p.persons, 0))::int AS without_shelter
    FROM o
    LEFT JOIN (SELECT order_id, sum(persons)::int AS persons FROM placed GROUP BY order_id) p ON p.order_id = o.id
    WHERE action = 'evacuate' AND status <> 'cancelled'
),
named AS (
    SELECT coalesce(json_agg(json_build_object(
               'id', s.id, 'code', s.code, 'name', s.name, 'class', s.class, 'status', s.status,
               'free', CASE WHEN s.status = 'closed' THEN 0
                            ELSE s.capacity - s.occupancy - coalesce((
                                SELECT sum(a.persons - a.checked_in) FROM shelter_reservations a
                                WHERE a.shelter_id = s.id AND a.released_at IS NULL), 0) END,
               'orders', x.orders, 'persons_directed', x.persons,
               'overbooked', s.capacity - s.occupancy < coalesce((
                   SELECT sum(a.persons - a.checked_in) FROM shelter_reservations a
                   WHERE a.shelter_id = s.id AND a.released_at IS NULL), 0)) ORDER BY x.persons DESC, s.id), '[]'::json) AS j
    FROM (SELECT shelter_id, count(DISTINCT order_id)::int AS orders, sum(persons)::int AS persons
          FROM placed GROUP BY shelter_id) x
    JOIN shelters s ON s.id = x.shelter_id
),
cells AS (
    SELECT coalesce(json_object_agg(k, CASE WHEN %(with_cells)s::bool
                                             THEN json_build_object('count', jsonb_array_length(v), 'codes', v)
                                             ELSE json_build_object('count', jsonb_array_length(v)) END
                                    ORDER BY k), '{}'::json) AS j
    FROM w, jsonb_each(w.affected_cells) AS e(k, v)
)
SELECT w.version, json_build_object(
    'id', w.id,
    'identifier', w.identifier,
    'sender', w.sender,
    'sent', w.sent,
    'last_message', w.last_message,
    'hazard_type', w.hazard_type,
    'level', w.level,
    'status', w.status,
    'expired', w.valid_until <= now(),
    'valid_from', w.valid_from,
    'valid_until', w.valid_until,
    'headline', w.headline,
    'description', w.description,
    'instruction', w.instruction,
    'source', w.source,
    'area', ST_AsGeoJSON(w.area, 6)::json,
    'area_spec', w.area_spec,
    'area_km2', round((ST_Area(w.area::geography) / 1e6)::numeric, 1),
    'affected_cells', (SELECT j FROM cells),
    'targets_by_kind', (SELECT j FROM by_kind),
    'orders', json_build_object(
        'total', c.total,
        'by_status', json_build_object('open', c.open, 'acknowledged', c.acknowledged,
                                       'in_progress', c.in_progress, 'done', c.done, 'cancelled', c.cancelled),
        'by_action', (SELECT j FROM by_action),
        'closure_rate', CASE WHEN c.total - c.cancelled > 0
                             THEN round(c.done::numeric / (c.total - c.cancelled), 4) END,
        'overdue', c.overdue,
        'cells_with_orders', c.cells_with_orders,
        'without_cell', c.without_cell),
    'evacuation', json_build_object(
        'orders', e.orders, 'threatened_persons', e.persons, 'persons_placed', e.placed,
        'without_shelter', e.without_shelter,
        'shelters', (SELECT j FROM named)),
    'version', w.version,
    'created_at', w.created_at, 'created_by', w.created_by,
    'updated_at', w.updated_at, 'updated_by', w.updated_by,
    'cancelled_at', w.cancelled_at, 'cancel_reason', w.cancel_reason
)::text AS body
FROM w, counts c, evac e
