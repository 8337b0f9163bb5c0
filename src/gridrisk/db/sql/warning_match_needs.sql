-- What the live orders of warning %(warning_id)s still need beyond what is booked for them: a team
-- per capability the rules name at the order's action, an amount per item (per target plus per
-- person, rounded up; the largest where several rules name one item), and places for the people of
-- an evacuation. One row per need, with the order's point, people and the rank of its action.
WITH w AS (
    SELECT id, hazard_type FROM warnings WHERE id = %(warning_id)s
),
o AS (
    SELECT o.id, o.target_type, o.target_kind, o.action, o.threatened_persons AS persons,
           ST_X(o.geom) AS lon, ST_Y(o.geom) AS lat, warning_action_rank(o.action) AS rank
    FROM work_orders o
    WHERE o.warning_id = %(warning_id)s AND o.status IN ('open', 'acknowledged', 'in_progress')
),
-- The rules carry the order's own columns: joining them back to `o` (a CTE read twice, so
-- materialized, with no index) was a nested loop of needs × orders when the planner, not having
-- seen the new orders yet, expected a handful: 25 s for the first whole-city warning of a database.
rules AS (
    SELECT o.id, o.lon, o.lat, o.persons, o.rank, n.capability, n.item,
           max(ceil(n.per_target + n.per_person * o.persons))::int AS amount
    FROM o CROSS JOIN w
    JOIN warning_rule_needs n
      ON n.hazard_type IN (w.hazard_type, '*') AND n.target_type IN (o.target_type, '*')
     AND n.target_kind IN (o.target_kind, '*') AND o.rank >= warning_action_rank(n.min_action)
    GROUP BY o.id, o.lon, o.lat, o.persons, o.rank, n.capability, n.item
    UNION ALL
    SELECT o.id, o.lon, o.lat, o.persons, o.rank, NULL, NULL, o.persons
    FROM o WHERE o.action = 'evacuate' AND o.persons > 0
)
SELECT r.id AS order_id, r.lon, r.lat, r.persons, r.rank, r.capability, r.item,
       CASE WHEN r.capability IS NOT NULL THEN 1
            WHEN r.item IS NOT NULL THEN r.amount - coalesce((
                SELECT sum(x.quantity) FROM supply_reservations x
                WHERE x.order_id = r.id AND x.item = r.item AND x.released_at IS NULL), 0)
            ELSE r.amount - coalesce((
                SELECT sum(x.persons) FROM shelter_reservations x
                WHERE x.order_id = r.id AND x.released_at IS NULL), 0)
       END::int AS amount
FROM rules r
WHERE (r.amount > 0 OR r.capability IS NOT NULL)
  AND (r.capability IS NULL OR NOT EXISTS (
      SELECT 1 FROM work_order_teams b
      WHERE b.order_id = r.id AND b.capability = r.capability AND b.released_at IS NULL))
ORDER BY r.rank DESC, r.persons DESC, r.id
