-- Targeting: bring one warning's work orders in line with what its area, hazard and level call for,
-- in one statement. The caller holds the warning's row lock and its orders' row locks, so nothing
-- else changes them meanwhile and the diff below is exact.
--
-- fresh  = every target the rules name for this hazard whose geometry intersects the area (true
--          intersection, tested against the area cut into pieces of at most 128 vertices, with the
--          pieces driving the join so that each prepared piece serves the targets behind it), with
--          the action the warning's level demands of its kind;
-- then   - a target without an order gets one (status open, due now + the level's due time),
--          whose people, teams and supplies the matching books next (warning_matching.py),
--        - an order whose action is weaker than the fresh one is escalated (done ones reopen),
--        - an order the targeting cancelled earlier whose target is back is reopened,
--        - an active order whose target is no longer in `fresh` is cancelled,
--        and every change is written to the orders' history. Actions never weaken: a downgraded
--        warning leaves issued orders as they are (people may already be on the move).
-- The caller runs this with nested loops off (warning_targeting.py says why): every join here is
-- then a hash join, except the spatial index join and the lateral lookups, which have no other
-- way to run and are written without joins inside them.
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
-- A target intersecting several pieces is met once per piece: DISTINCT ON keeps one row each.
hit AS MATERIALIZED (
    (SELECT DISTINCT ON (s.id) 'risk_source'::text AS target_type, s.id AS target_id, s.category AS target_kind,
            s.code, s.name, s.geom
     FROM pieces p
     JOIN risk_sources s ON s.geom && p.g AND ST_Intersects(p.g, s.geom)
     WHERE s.status = 'active'
       AND s.category IN (SELECT target_kind FROM rules WHERE target_type = 'risk_source')
     ORDER BY s.id)
    UNION ALL
    (SELECT DISTINCT ON (h.id) 'hazard_point'::text, h.id, h.kind, h.code, h.name, h.geom
     FROM pieces p
     JOIN hazard_points h ON h.geom && p.g AND ST_Intersects(p.g, h.geom)
     WHERE h.status NOT IN ('remediated', 'closed')
       AND h.kind IN (SELECT target_kind FROM rules WHERE target_type = 'hazard_point')
     ORDER BY h.id)
    UNION ALL
    (SELECT DISTINCT ON (v.id) 'vulnerable_site'::text, v.id, v.kind, v.code, v.name, v.geom
     FROM pieces p
     JOIN vulnerable_sites v ON v.geom && p.g AND ST_Intersects(p.g, v.geom)
     WHERE v.status = 'active'
       AND v.kind IN (SELECT target_kind FROM rules WHERE target_type = 'vulnerable_site')
     ORDER BY v.id)
),
fresh AS MATERIALIZED (
    SELECT h.target_type, h.target_id, h.target_kind, h.code, h.name, ST_PointOnSurface(h.geom) AS pos,
           GeometryType(h.geom) = 'POINT' AS is_point,
           CASE h.target_type
                WHEN 'hazard_point' THEN (SELECT hp.threatened_persons FROM hazard_points hp WHERE hp.id = h.target_id)
                WHEN 'vulnerable_site' THEN (SELECT vs.persons FROM vulnerable_sites vs WHERE vs.id = h.target_id)
                WHEN 'risk_source' THEN (SELECT rs.persons FROM risk_sources rs WHERE rs.id = h.target_id)
                ELSE 0 END AS persons,
           r.action, warning_action_rank(r.action) AS rank
    FROM hit h
    JOIN rules r ON r.target_type = h.target_type AND r.target_kind = h.target_kind
),
cur AS MATERIALIZED (
    SELECT o.id, o.target_type, o.target_id, o.status, o.action, o.cancel_cause
    FROM work_orders o WHERE o.warning_id = %(warning_id)s
),
-- Targets against existing orders in one FULL JOIN: PostgreSQL runs a full join only as a hash or
-- merge join, so the diff stays linear however few rows the planner expects (a fresh work_orders
-- table has no statistics, and a nested loop over 9,000 × 9,000 rows takes seconds).
diff AS MATERIALIZED (
    SELECT f.target_type AS f_type, f.target_id AS f_id, f.target_kind, f.code, f.name, f.pos, f.is_point,
           f.persons, f.action AS fresh_action, f.rank,
           c.id AS order_id, c.status AS cur_status, c.action AS cur_action, c.cancel_cause
    FROM fresh f
    FULL JOIN cur c ON c.target_type = f.target_type AND c.target_id = f.target_id
),
ins AS (
    INSERT INTO work_orders (warning_id, target_type, target_id, target_kind, target_code, target_name, geom,
                             layer, cell_code, district_code, action, level, threatened_persons, status, due_at,
                             updated_by)
    SELECT w.id, d.f_type, d.f_id, d.target_kind, d.code, d.name, d.pos,
           'comprehensive', cell.code, cell.district_code, d.fresh_action, w.level, d.persons,
           'open', now() + w.due, %(who)s
    FROM diff d
    CROSS JOIN w
    -- The comprehensive cell that holds the target (for a polygon: the one holding its point on
    -- surface, among the cells it overlaps), found through the maintained item-to-cell tables.
    -- No join inside: the cell ids come from the item-to-cell table, the cells by primary key.
    LEFT JOIN LATERAL (
        SELECT c.code, c.district_code FROM cells c
        WHERE c.id = ANY(ARRAY(
            SELECT sc.cell_id FROM source_cells sc
            WHERE d.f_type = 'risk_source' AND sc.source_id = d.f_id AND sc.layer = 'comprehensive'
            UNION ALL
            SELECT hc.cell_id FROM hazard_cells hc
            WHERE d.f_type = 'hazard_point' AND hc.hazard_id = d.f_id AND hc.layer = 'comprehensive'
            UNION ALL
            SELECT p.cell_id FROM cell_pieces p
            WHERE d.f_type = 'vulnerable_site' AND p.layer = 'comprehensive'
              AND p.geom && d.pos AND ST_Intersects(p.geom, d.pos)))
        ORDER BY CASE WHEN d.is_point THEN 0 WHEN ST_Intersects(c.geom, d.pos) THEN 0 ELSE 1 END, c.code
        LIMIT 1
    ) cell ON true
    WHERE d.order_id IS NULL AND d.fresh_action <> 'none'
    ON CONFLICT (warning_id, target_type, target_id) DO NOTHING
    RETURNING id, version, status, action
),
upd AS (
    UPDATE work_orders o
    SET action = CASE WHEN d.rank > warning_action_rank(o.action) THEN d.fresh_action ELSE o.action END,
        level = CASE WHEN d.rank > warning_action_rank(o.action) THEN w.level ELSE o.level END,
        status = CASE WHEN o.status IN ('done', 'cancelled') THEN 'open' ELSE o.status END,
        due_at = CASE WHEN d.rank > warning_action_rank(o.action) OR o.status IN ('done', 'cancelled')
                      THEN now() + w.due ELSE o.due_at END,
        acknowledged_at = CASE WHEN o.status IN ('done', 'cancelled') THEN NULL ELSE o.acknowledged_at END,
        done_at = NULL, done_by = NULL, done_note = NULL, photo_url = NULL, done_location = NULL,
        done_distance_m = NULL, cancelled_at = NULL, cancel_cause = NULL, cancel_reason = NULL,
        threatened_persons = d.persons,
        version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM diff d CROSS JOIN w
    WHERE o.id = d.order_id AND d.f_id IS NOT NULL AND d.fresh_action <> 'none'
      AND (d.rank > warning_action_rank(d.cur_action)
           OR (d.cur_status = 'cancelled' AND d.cancel_cause IN ('not_targeted', 'warning_cancelled')))
    RETURNING o.id, o.version, o.status, o.action, o.level, d.cur_status AS from_status,
              d.cur_action AS from_action, d.rank > warning_action_rank(d.cur_action) AS escalate
),
cancel AS (
    UPDATE work_orders o
    SET status = 'cancelled', cancel_cause = 'not_targeted',
        cancel_reason = 'No longer a target of this warning: outside its area, no longer active, or not '
                        'exposed to its hazard under the current rules.',
        cancelled_at = now(), version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM diff d
    WHERE o.id = d.order_id AND d.f_id IS NULL AND d.cur_status IN ('open', 'acknowledged', 'in_progress')
      AND EXISTS (SELECT 1 FROM w)  -- never for a cancelled warning, whose `fresh` is empty
    RETURNING o.id, o.version, o.action, d.cur_status AS from_status, o.cancel_reason
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
