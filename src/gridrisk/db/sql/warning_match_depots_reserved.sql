-- What live orders have reserved of each item at the locked depots (read after the lock).
SELECT depot_id, item, sum(quantity)::int AS reserved
FROM supply_reservations
WHERE released_at IS NULL AND depot_id = ANY(%(ids)s)
GROUP BY depot_id, item
