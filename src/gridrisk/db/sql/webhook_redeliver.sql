-- Send a delivery again, now, with the same webhook id (its attempts start afresh).
UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_at = now()
WHERE id = %(delivery_id)s AND endpoint_id = %(id)s
RETURNING id
