-- Announce each unfinished order that passed its due time, once (event work_order_overdue, which
-- webhooks may subscribe to), and forget the announcement of orders whose due time moved into the
-- future (a later escalation), so that they are announced again if they pass it. Rows a worker
-- holds right now are skipped: the next run takes them.
WITH due AS MATERIALIZED (
    SELECT o.id FROM work_orders o
    WHERE o.status IN ('open', 'acknowledged', 'in_progress') AND o.due_at <= now()
      AND o.overdue_notified_at IS NULL
    ORDER BY o.id
    FOR UPDATE OF o SKIP LOCKED
),
marked AS (
    UPDATE work_orders o SET overdue_notified_at = now()
    FROM due WHERE o.id = due.id
    RETURNING o.*
),
rearmed AS (
    UPDATE work_orders o SET overdue_notified_at = NULL
    WHERE o.overdue_notified_at IS NOT NULL AND o.due_at > now()
    RETURNING o.id
),
sent AS (
    SELECT outbox_write('work_order_overdue', ARRAY(
        SELECT jsonb_build_object(
                   'id', m.id, 'warning', m.warning_id, 'status', m.status, 'action', m.action,
                   'level', m.level, 'layer', m.layer, 'cell', m.cell_code, 'due_at', m.due_at,
                   'target', jsonb_build_object('type', m.target_type, 'code', m.target_code,
                                                'name', m.target_name),
                   'responsible', jsonb_build_object('person', m.responsible_person,
                                                     'phone', m.responsible_phone,
                                                     'unit', m.responsible_unit))
        FROM marked m ORDER BY m.id)) AS n
)
SELECT (SELECT n FROM sent)::int AS overdue, (SELECT count(*) FROM rearmed)::int AS rearmed
