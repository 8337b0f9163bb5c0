-- An endpoint's delivery log, newest first, optionally of one status.
SELECT id, 'msg_' || id AS webhook_id, event_id, kind, status, attempts, next_at, last_status, last_error,
       delivered_at, event_at
FROM webhook_deliveries
WHERE endpoint_id = %(id)s AND (%(status)s::text IS NULL OR status = %(status)s)
ORDER BY id DESC
LIMIT %(limit)s
