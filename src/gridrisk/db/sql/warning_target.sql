-- Targeting: bring one warning's work orders in line with what its area, hazard and level call for,
-- in one statement. The caller holds the warning's row lock and its orders' row locks, so nothing
-- else changes them meanwhile and the diff below is exact.
--
-- fresh  = every target the rules name for this hazard whose geometry intersects the area (true
--          intersection, tested against the area cut into pieces of at most 128 vertices, with the
--          pieces driving the join so that each prepared piece serves the targets behind it), with
--          the action the warning's level demands of its kind;
-- then   - a target without an order gets one (status open, due now + the level's due time),
--        - an order whose action is weaker than the fresh one is escalated (done ones reopen),
--        - an order the targeting cancelled earlier whose target is back is reopened,
--        - an active order whose target is no longer in `fresh` is cancelled,
--        and every change is written to the orders' history. Actions never weaken: a downgraded
--        warning leaves issued orders as they are (people may already be on the move).
WITH w AS MATERIALIZED (
    SELECT w.id, w.hazard_type, w.level, w.area, make_interval(mins => d.due_minutes) AS due
    FROM warnings w JOIN warning_due_times d ON d.level = w.level
    WHERE w.id = %(warning_id)s AND w.status = 'active'
),
rules AS MATERIALIZED (
    SELECT r.target_type, r.target_kind,
           CASE w.level WHEN 'red' THEN r.action_red WHEN 'orange' THEN r.action_orange
                        WHEN 'yellow' THEN r.action_yellow ELSE r.action_blue END AS action
    FROM warning_rules r JOIN w ON r.hazard_type = w.hazard_type
),
pieces AS MATERIALIZED (
    SELECT ST_Subdivide(w.area, 128) AS g FROM w
),
hit AS MATERIALIZED (
    SELECT DISTINCT 'risk_source'::text AS target_type, s.id AS target_id
    FROM pieces p
    JOIN risk_sources s ON s.geom && p.g AND ST_Intersects(p.g, s.geom)
    WHERE s.status = 'active'
      AND s.category IN (SELECT target_kind FROM rules WHERE target_type = 'risk_source')
    UNION ALL
    SELECT DISTINCT 'hazard_point'::text, h.id
    FROM pieces p
    JOIN hazard_points h ON h.geom && p.g AND ST_Intersects(p.g, h.geom)
    WHERE h.status NOT IN ('remediated', 'closed')
      AND h.kind IN (SELECT target_kind FROM rules WHERE target_type = 'hazard_point')
),
fresh AS MATERIALIZED (
    SELECT t.*, r.action, warning_action_rank(r.action) AS rank
    FROM (
        SELECT 'risk_source'::text AS target_type, s.id AS target_id, s.category AS target_kind,
               s.code, s.name, ST_PointOnSurface(s.geom) AS pos, GeometryType(s.geom) = 'POINT' AS is_point,
               0 AS persons
        FROM hit JOIN risk_sources s ON s.id = hit.target_id
        WHERE hit.target_type = 'risk_source'
        UNION ALL
        SELECT 'hazard_point', h.id, h.kind, h.code, h.name, ST_PointOnSurface(h.geom),
               GeometryType(h.geom) = 'POINT', h.threatened_persons
        FROM hit JOIN hazard_points h ON h.id = hit.target_id
        WHERE hit.target_type = 'hazard_point'
    ) t
    JOIN rules r ON r.target_type = t.target_type AND r.target_kind = t.target_kind
),
cur AS MATERIALIZED (
    SELECT o.id, o.target_type, o.target_id, o.status, o.action, o.cancel_cause, o.version
    FROM work_orders o WHERE o.warning_id = %(warning_id)s
),
-- Evacuation orders name the nearest open or standby shelter with room for everyone the target
-- threatens: KNN on the shelters' geography index, the candidates re-sorted by exact distance.
shelter AS MATERIALIZED (
    SELECT f.target_type, f.target_id, sh.id AS shelter_id, sh.d AS distance_m
    FROM fresh f
    LEFT JOIN LATERAL (
        SELECT c.id, c.d FROM (
            SELECT s.id, ST_Distance(s.geom::geography, f.pos::geography) AS d
            FROM shelters s
            WHERE s.status IN ('open', 'standby') AND s.capacity - s.occupancy >= f.persons
            ORDER BY s.geom::geography <-> f.pos::geography
            LIMIT 8
        ) c
        ORDER BY c.d, c.id
        LIMIT 1
    ) sh ON true
    WHERE f.action = 'evacuate'
),
ins AS (
    INSERT INTO work_orders (warning_id, target_type, target_id, target_kind, target_code, target_name, geom,
                             layer, cell_code, district_code, action, level, threatened_persons, shelter_id,
                             shelter_distance_m, shelter_note, status, due_at, updated_by)
    SELECT w.id, f.target_type, f.target_id, f.target_kind, f.code, f.name, f.pos,
           'comprehensive', cell.code, cell.district_code, f.action, w.level, f.persons, sh.shelter_id,
           sh.distance_m,
           CASE WHEN f.action = 'evacuate' AND sh.shelter_id IS NULL
                THEN format('No open or standby shelter has %%s free places; split the people between '
                            'shelters (GET /shelters/nearest) or open one.', f.persons) END,
           'open', now() + w.due, %(who)s
    FROM fresh f
    CROSS JOIN w
    LEFT JOIN shelter sh ON sh.target_type = f.target_type AND sh.target_id = f.target_id
    -- The comprehensive cell that holds the target (for a polygon: the one holding its point on
    -- surface, among the cells it overlaps), found through the maintained item-to-cell tables.
    LEFT JOIN LATERAL (
        SELECT x.code, x.district_code FROM (
            SELECT c.code, c.district_code, c.geom FROM source_cells sc JOIN cells c ON c.id = sc.cell_id
            WHERE f.target_type = 'risk_source' AND sc.source_id = f.target_id AND sc.layer = 'comprehensive'
            UNION ALL
            SELECT c.code, c.district_code, c.geom FROM hazard_cells hc JOIN cells c ON c.id = hc.cell_id
            WHERE f.target_type = 'hazard_point' AND hc.hazard_id = f.target_id AND hc.layer = 'comprehensive'
        ) x
        ORDER BY CASE WHEN f.is_point THEN 0 WHEN ST_Intersects(x.geom, f.pos) THEN 0 ELSE 1 END, x.code
        LIMIT 1
    ) cell ON true
    WHERE f.action <> 'none'
      AND NOT EXISTS (SELECT 1 FROM cur c WHERE c.target_type = f.target_type AND c.target_id = f.target_id)
    ON CONFLICT (warning_id, target_type, target_id) DO NOTHING
    RETURNING id, version, status, action
),
changed AS (
    SELECT c.id, c.status AS from_status, c.action AS from_action, f.action AS fresh_action,
           f.rank > warning_action_rank(c.action) AS escalate,
           sh.shelter_id, sh.distance_m, f.persons
    FROM cur c
    JOIN fresh f ON f.target_type = c.target_type AND f.target_id = c.target_id
    LEFT JOIN shelter sh ON sh.target_type = f.target_type AND sh.target_id = f.target_id
    WHERE f.action <> 'none'
      AND (f.rank > warning_action_rank(c.action)
           OR (c.status = 'cancelled' AND c.cancel_cause IN ('not_targeted', 'warning_cancelled')))
),
upd AS (
    UPDATE work_orders o
    SET action = CASE WHEN ch.escalate THEN ch.fresh_action ELSE o.action END,
        level = CASE WHEN ch.escalate THEN w.level ELSE o.level END,
        status = CASE WHEN o.status IN ('done', 'cancelled') THEN 'open' ELSE o.status END,
        due_at = CASE WHEN ch.escalate OR o.status IN ('done', 'cancelled') THEN now() + w.due ELSE o.due_at END,
        acknowledged_at = CASE WHEN o.status IN ('done', 'cancelled') THEN NULL ELSE o.acknowledged_at END,
        done_at = NULL, done_by = NULL, done_note = NULL, photo_url = NULL, done_location = NULL,
        done_distance_m = NULL, cancelled_at = NULL, cancel_cause = NULL, cancel_reason = NULL,
        threatened_persons = ch.persons,
        shelter_id = CASE WHEN ch.escalate AND ch.fresh_action = 'evacuate' THEN ch.shelter_id ELSE o.shelter_id END,
        shelter_distance_m = CASE WHEN ch.escalate AND ch.fresh_action = 'evacuate' THEN ch.distance_m
                                  ELSE o.shelter_distance_m END,
        shelter_note = CASE WHEN ch.escalate AND ch.fresh_action = 'evacuate' AND ch.shelter_id IS NULL
                            THEN format('No open or standby shelter has %%s free places; split the people '
                                        'between shelters (GET /shelters/nearest) or open one.', ch.persons)
                            WHEN ch.escalate AND ch.fresh_action = 'evacuate' THEN NULL
                            ELSE o.shelter_note END,
        version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM changed ch CROSS JOIN w
    WHERE o.id = ch.id
    RETURNING o.id, o.version, o.status, o.action, o.level, ch.from_status, ch.from_action, ch.escalate
),
cancel AS (
    UPDATE work_orders o
    SET status = 'cancelled', cancel_cause = 'not_targeted',
        cancel_reason = 'No longer a target of this warning: outside its area, no longer active, or not '
                        'exposed to its hazard under the current rules.',
        cancelled_at = now(), version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM cur c
    WHERE o.id = c.id AND c.status IN ('open', 'acknowledged', 'in_progress')
      AND EXISTS (SELECT 1 FROM w)  -- never for a cancelled warning, whose `fresh` is empty
      AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.target_type = c.target_type AND f.target_id = c.target_id)
    RETURNING o.id, o.version, o.action, c.status AS from_status, o.cancel_reason
),
hist AS (
    INSERT INTO work_order_history (order_id, version, at, by, op, from_status, to_status, action, note)
    SELECT id, version, now(), %(who)s, 'issued', NULL, status, action, NULL FROM ins
    UNION ALL
    SELECT u.id, u.version, now(), %(who)s, CASE WHEN u.escalate THEN 'escalated' ELSE 'reopened' END,
           u.from_status, u.status, u.action,
           CASE WHEN u.escalate THEN format('Warning level %%s: action %%s → %%s.', u.level, u.from_action, u.action)
                ELSE 'The target is a target of this warning again.' END
    FROM upd u
    UNION ALL
    SELECT id, version, now(), %(who)s, 'cancelled', from_status, 'cancelled', action, cancel_reason FROM cancel
)
SELECT (SELECT count(*) FROM ins)::int AS created,
       (SELECT count(*) FROM upd WHERE escalate)::int AS escalated,
       (SELECT count(*) FROM upd WHERE NOT escalate)::int AS reopened,
       (SELECT count(*) FROM cancel)::int AS cancelled,
       (SELECT count(*) FROM fresh)::int AS targets
