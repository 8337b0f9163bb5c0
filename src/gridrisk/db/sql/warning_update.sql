-- Apply a message's fields to its (locked) warning; the version moves only when a field changed.
UPDATE warnings
SET hazard_type = %(hazard_type)s, level = %(level)s, valid_from = %(valid_from)s,
    valid_until = %(valid_until)s, headline = %(headline)s, description = %(description)s,
    instruction = %(instruction)s, sender = %(sender)s, area = %(area)s::geometry, area_spec = %(area_spec)s,
    sent = greatest(sent, %(sent)s), last_message = %(message)s,
    version = version + %(bump)s::int,
    updated_at = CASE WHEN %(bump)s::int > 0 THEN now() ELSE updated_at END,
    updated_by = CASE WHEN %(bump)s::int > 0 THEN %(who)s ELSE updated_by END
WHERE id = %(id)s
