-- Give the endpoint back (and disable it when the receiver said 410 Gone).
UPDATE webhook_endpoints
SET lease_until = NULL,
    enabled = CASE WHEN %(gone)s::text IS NULL THEN enabled ELSE false END,
    disabled_reason = coalesce(%(gone)s, disabled_reason),
    updated_at = CASE WHEN %(gone)s::text IS NULL THEN updated_at ELSE now() END
WHERE id = %(endpoint_id)s
