-- The closed loop of warning %(warning_id)s: per scope (the city, each district, each cell of the
-- orders' layer) its orders by status, how long they took to be acknowledged and done (minutes,
-- p50 and p90), the overdue ones, the people planned for evacuation, evacuated (done) and holding
-- shelter places now, and the teams and supplies committed. One row per scope: `scope` is
-- 'city', 'district' or 'cell'.
WITH o AS (
    SELECT o.*, o.status IN ('open', 'acknowledged', 'in_progress') AS active,
           extract(epoch FROM o.acknowledged_at - o.created_at) / 60 AS ack_min,
           extract(epoch FROM o.done_at - o.created_at) / 60 AS done_min,
           CASE WHEN o.action = 'evacuate' AND o.status <> 'cancelled' THEN o.threatened_persons ELSE 0 END
               AS planned,
           CASE WHEN o.action = 'evacuate' AND o.status = 'done' THEN o.threatened_persons ELSE 0 END AS evacuated,
           coalesce((SELECT sum(r.persons) FROM shelter_reservations r
                     WHERE r.order_id = o.id AND r.released_at IS NULL), 0) AS placed,
           (SELECT count(*) FROM work_order_teams b WHERE b.order_id = o.id) AS teams,
           (SELECT count(*) FROM work_order_teams b WHERE b.order_id = o.id AND b.released_at IS NULL)
               AS teams_out,
           (SELECT coalesce(sum(x.quantity), 0) FROM supply_reservations x WHERE x.order_id = o.id) AS supplies
    FROM work_orders o WHERE o.warning_id = %(warning_id)s
),
g AS (
    SELECT CASE WHEN GROUPING(o.district_code) = 1 THEN 'city'
                WHEN GROUPING(o.cell_code) = 1 THEN 'district' ELSE 'cell' END AS scope,
           o.district_code, o.cell_code,
           count(*)::int AS orders,
           count(*) FILTER (WHERE o.status = 'open')::int AS open,
           count(*) FILTER (WHERE o.status = 'acknowledged')::int AS acknowledged,
           count(*) FILTER (WHERE o.status = 'in_progress')::int AS in_progress,
           count(*) FILTER (WHERE o.status = 'done')::int AS done,
           count(*) FILTER (WHERE o.status = 'cancelled')::int AS cancelled,
           count(*) FILTER (WHERE o.active AND o.due_at < now())::int AS overdue,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY o.ack_min)::numeric, 1) AS ack_p50_min,
           round(percentile_cont(0.9) WITHIN GROUP (ORDER BY o.ack_min)::numeric, 1) AS ack_p90_min,
           round(percentile_cont(0.5) WITHIN GROUP (ORDER BY o.done_min)::numeric, 1) AS done_p50_min,
           round(percentile_cont(0.9) WITHIN GROUP (ORDER BY o.done_min)::numeric, 1) AS done_p90_min,
           sum(o.planned)::int AS persons_planned,
           sum(o.evacuated)::int AS persons_evacuated,
           sum(o.placed)::int AS persons_placed,
           sum(CASE WHEN o.active THEN greatest(o.planned - o.placed, 0) ELSE 0 END)::int AS persons_without_place,
           sum(o.teams)::int AS teams_committed,
           sum(o.teams_out)::int AS teams_deployed,
           sum(o.supplies)::int AS supply_units
    FROM o
    GROUP BY GROUPING SETS ((), (o.district_code), (o.district_code, o.cell_code))
)
SELECT g.*,
       CASE g.scope WHEN 'city' THEN (SELECT name FROM city_profile)
                    WHEN 'district' THEN (SELECT d.name FROM cells d WHERE d.layer = 'district' AND d.code = g.district_code)
                    ELSE (SELECT c.name FROM cells c WHERE c.layer = 'comprehensive' AND c.code = g.cell_code) END AS name
FROM g
ORDER BY CASE g.scope WHEN 'city' THEN 0 WHEN 'district' THEN 1 ELSE 2 END, g.district_code NULLS LAST, g.cell_code
