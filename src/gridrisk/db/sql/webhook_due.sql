-- The leased endpoint's pending deliveries in event order, up to %(limit)s: sent one after another,
-- stopping at the first that is not yet due or fails (a later event never overtakes an earlier one).
SELECT id, event_id, kind, payload, event_at, attempts, next_at <= now() AS due
FROM webhook_deliveries
WHERE endpoint_id = %(endpoint_id)s AND status = 'pending'
ORDER BY id
LIMIT %(limit)s
