-- One API key that is not revoked: id, holder's name and role (no row otherwise).
SELECT id, name, role FROM api_keys WHERE id = %(key_id)s AND revoked_at IS NULL
