-- Change an endpoint: url, kinds, description, enabled (enabling clears the reason it was disabled).
UPDATE webhook_endpoints
SET url = coalesce(%(url)s, url), kinds = coalesce(%(kinds)s, kinds),
    description = CASE WHEN %(set_description)s THEN %(description)s ELSE description END,
    enabled = coalesce(%(enabled)s, enabled),
    disabled_reason = CASE WHEN %(enabled)s IS TRUE THEN NULL ELSE disabled_reason END,
    updated_at = now()
WHERE id = %(id)s
RETURNING id
