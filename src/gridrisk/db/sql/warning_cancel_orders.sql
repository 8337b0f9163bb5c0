-- A cancelled warning cancels its unfinished work orders (done ones stay done), with history.
-- The caller holds the orders' row locks, so `old` is what the UPDATE changes.
WITH old AS MATERIALIZED (
    SELECT id, status FROM work_orders
    WHERE warning_id = %(warning_id)s AND status IN ('open', 'acknowledged', 'in_progress')
),
cancel AS (
    UPDATE work_orders o
    SET status = 'cancelled', cancel_cause = 'warning_cancelled', cancel_reason = %(reason)s,
        cancelled_at = now(), version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM old
    WHERE o.id = old.id
    RETURNING o.id, o.version, o.action, old.status AS from_status
),
hist AS (
    INSERT INTO work_order_history (order_id, version, at, by, op, from_status, to_status, action, note)
    SELECT id, version, now(), %(who)s, 'cancelled', from_status, 'cancelled', action,
           'The warning was cancelled: ' || %(reason)s
    FROM cancel
)
SELECT count(*)::int AS cancelled FROM cancel
