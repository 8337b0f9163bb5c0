-- Check people in (+delta) or out (-delta) in one statement: the row lock is taken and released
-- inside it, the bounds are checked against the row as it is when locked (a concurrent check-in
-- that committed first is seen: READ COMMITTED re-evaluates the WHERE on the newest row version),
-- and `full`/`open` follow in the same write. No version bump, so no history row and no new ETag:
-- occupancy is live state, not a registry edit. No row back: refused (see shelter_occupancy_state).
UPDATE shelters
SET occupancy = occupancy + %(delta)s,
    status = CASE WHEN occupancy + %(delta)s >= capacity THEN 'full' ELSE 'open' END
WHERE id = %(id)s AND status IN ('open', 'full') AND occupancy + %(delta)s BETWEEN 0 AND capacity
RETURNING id, code, occupancy, capacity, capacity - occupancy AS free, status, version
