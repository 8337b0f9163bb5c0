-- Record one attempt: delivered, to retry at %(next_at)s, given up (failed) or disabled (410).
UPDATE webhook_deliveries
SET status = %(status)s, attempts = attempts + 1, last_status = %(http_status)s, last_error = %(error)s,
    next_at = coalesce(%(next_at)s, next_at),
    delivered_at = CASE WHEN %(status)s = 'delivered' THEN now() ELSE delivered_at END
WHERE id = %(id)s
