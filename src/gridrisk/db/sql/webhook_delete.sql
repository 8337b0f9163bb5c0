-- Remove an endpoint and its delivery log.
DELETE FROM webhook_endpoints WHERE id = %(id)s RETURNING id
