-- A cancelled warning cancels its unfinished work orders (done ones stay done), with history.
WITH cancel AS (
    UPDATE work_orders o
    SET status = 'cancelled', cancel_cause = 'warning_cancelled', cancel_reason = %(reason)s,
        cancelled_at = now(), version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM work_orders c
    WHERE o.id = c.id AND o.warning_id = %(warning_id)s AND o.status IN ('open', 'acknowledged', 'in_progress')
    RETURNING o.id, o.version, o.action, c.status AS from_status
),
hist AS (
    INSERT INTO work_order_history (order_id, version, at, by, op, from_status, to_status, action, note)
    SELECT id, version, now(), %(who)s, 'cancelled', from_status, 'cancelled', action,
           'The warning was cancelled: ' || %(reason)s
    FROM cancel
)
SELECT count(*)::int AS cancelled FROM cancel
