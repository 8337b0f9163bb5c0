-- Orders still open when their warning's valid-until has passed end as expired (cancel cause
-- `expired`), with history; the release trigger gives back what was booked for them. Locked in id
-- order and skipping rows a worker holds right now (the next run takes them).
WITH old AS MATERIALIZED (
    SELECT o.id, o.status FROM work_orders o JOIN warnings w ON w.id = o.warning_id
    WHERE w.valid_until <= now() AND o.status IN ('open', 'acknowledged', 'in_progress')
    ORDER BY o.id
    FOR UPDATE OF o SKIP LOCKED
),
ended AS (
    UPDATE work_orders o
    SET status = 'cancelled', cancel_cause = 'expired',
        cancel_reason = 'The warning expired before the order was done.',
        cancelled_at = now(), version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM old
    WHERE o.id = old.id
    RETURNING o.id, o.version, o.action, o.warning_id, old.status AS from_status
),
hist AS (
    INSERT INTO work_order_history (order_id, version, at, by, op, from_status, to_status, action, note)
    SELECT id, version, now(), %(who)s, 'expired', from_status, 'cancelled', action,
           'The warning expired before the order was done.'
    FROM ended
)
SELECT count(*)::int AS orders, count(DISTINCT warning_id)::int AS warnings FROM ended
