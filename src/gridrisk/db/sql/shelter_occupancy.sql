-- Check people in (+delta) or out (-delta) in one statement: the row lock is taken and released
-- inside it, the bounds are checked against the row as it is when locked (a concurrent check-in
-- that committed first is seen: READ COMMITTED re-evaluates the WHERE on the newest row version),
-- and `full`/`open` follow in the same write. No version bump, so no history row and no new ETag:
-- occupancy is live state, not a registry edit. No row back: refused (see shelter_occupancy_state).
-- Evacuees of a work order (%(order_id)s) checking in use up the places reserved for that order at
-- this shelter, in the same statement: from then on they count in the occupancy, not as reserved.
WITH s AS (
    UPDATE shelters
    SET occupancy = occupancy + %(delta)s,
        status = CASE WHEN occupancy + %(delta)s >= capacity THEN 'full' ELSE 'open' END
    WHERE id = %(id)s AND status IN ('open', 'full') AND occupancy + %(delta)s BETWEEN 0 AND capacity
    RETURNING id, code, occupancy, capacity, status, version
),
held AS (
    SELECT r.id, r.persons - r.checked_in AS waiting
    FROM shelter_reservations r
    WHERE %(delta)s > 0 AND r.order_id = %(order_id)s::bigint AND r.shelter_id = %(id)s
      AND r.released_at IS NULL AND r.checked_in < r.persons AND EXISTS (SELECT 1 FROM s)
    ORDER BY r.id
    FOR UPDATE
),
take AS (
    SELECT id, least(waiting, greatest(%(delta)s - coalesce(sum(waiting) OVER (
               ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0), 0)) AS n
    FROM held
),
used AS (
    UPDATE shelter_reservations r SET checked_in = r.checked_in + t.n
    FROM take t WHERE r.id = t.id AND t.n > 0
    RETURNING t.n
)
SELECT s.id, s.code, s.occupancy, s.capacity, s.capacity - s.occupancy AS free, s.status, s.version,
       (SELECT coalesce(sum(n), 0)::int FROM used) AS reservation_used,
       -- Still held for other evacuees (as before this statement, less what it used).
       shelter_reserved(s.id) - (SELECT coalesce(sum(n), 0)::int FROM used) AS reserved
FROM s
