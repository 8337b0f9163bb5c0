-- Webhook endpoints (all, or %(id)s) with their delivery counts; the secret is never read back.
SELECT e.id, e.url, e.kinds, e.description, e.enabled, e.disabled_reason, e.created_at, e.created_by,
       e.updated_at,
       (SELECT json_object_agg(status, n) FROM (SELECT status, count(*)::int AS n FROM webhook_deliveries d
                                                WHERE d.endpoint_id = e.id GROUP BY status) s) AS deliveries
FROM webhook_endpoints e
WHERE %(id)s::bigint IS NULL OR e.id = %(id)s
ORDER BY e.id
