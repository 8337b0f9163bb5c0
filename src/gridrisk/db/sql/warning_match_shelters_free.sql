-- Free places of the locked shelters (read after the lock), those with any. Reserved evacuees who
-- have checked in are in the occupancy already (checked_in), so they are not held apart twice.
SELECT s.id, s.capacity - s.occupancy - coalesce(r.reserved, 0) AS free
FROM shelters s
LEFT JOIN (SELECT shelter_id, sum(persons - checked_in)::int AS reserved FROM shelter_reservations
           WHERE released_at IS NULL GROUP BY shelter_id) r ON r.shelter_id = s.id
WHERE s.id = ANY(%(ids)s) AND s.capacity - s.occupancy - coalesce(r.reserved, 0) > 0
ORDER BY s.id
