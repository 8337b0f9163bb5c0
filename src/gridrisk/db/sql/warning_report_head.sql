-- The fields a warning's report opens with.
SELECT id, identifier, sender, hazard_type, level, status, headline, valid_from, valid_until,
       valid_until <= now() AS expired
FROM warnings WHERE id = %(warning_id)s
