-- A depot's new stock against the catalogue and against what live work orders have reserved of it
-- (%(depot_id)s NULL: a new depot, nothing reserved). One row per problem: unknown items first.
WITH given AS (
    SELECT * FROM unnest(%(items)s::text[], %(quantities)s::int[]) AS g(item, quantity)
)
SELECT g.item, true AS unknown, NULL::int AS reserved, g.quantity,
       (SELECT string_agg(item, ', ' ORDER BY item) FROM supply_items) AS known
FROM given g
WHERE NOT EXISTS (SELECT 1 FROM supply_items i WHERE i.item = g.item)
UNION ALL
SELECT r.item, false, r.reserved, coalesce(g.quantity, 0), NULL
FROM (SELECT x.item, sum(x.quantity)::int AS reserved FROM supply_reservations x
      WHERE x.depot_id = %(depot_id)s AND x.released_at IS NULL GROUP BY x.item) r
LEFT JOIN given g ON g.item = r.item
WHERE coalesce(g.quantity, 0) < r.reserved
ORDER BY 2 DESC, 1
