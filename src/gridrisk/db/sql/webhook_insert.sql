-- Register a webhook endpoint.
INSERT INTO webhook_endpoints (url, secret, kinds, description, created_by)
VALUES (%(url)s, %(secret)s, %(kinds)s, %(description)s, %(who)s)
RETURNING id
