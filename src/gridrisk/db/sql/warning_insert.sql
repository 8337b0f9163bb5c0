-- A new warning from its first message; nothing when a concurrent post of the same identifier
-- committed first (the caller then updates that one instead).
INSERT INTO warnings (identifier, sender, sent, last_message, hazard_type, level, valid_from, valid_until,
                      headline, description, instruction, area, area_spec, source, created_by, updated_by)
VALUES (%(identifier)s, %(sender)s, %(sent)s, %(identifier)s, %(hazard_type)s, %(level)s, %(valid_from)s,
        %(valid_until)s, %(headline)s, %(description)s, %(instruction)s, %(area)s::geometry, %(area_spec)s,
        %(source)s, %(who)s, %(who)s)
ON CONFLICT (identifier) DO NOTHING
RETURNING id
