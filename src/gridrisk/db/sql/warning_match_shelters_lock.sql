-- Lock the shelters that can take people (open or standby), in id order, then read their free
-- places in the next statement: capacity less occupancy less what live orders have reserved.
SELECT id FROM shelters WHERE status IN ('open', 'standby') ORDER BY id FOR UPDATE
