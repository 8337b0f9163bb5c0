-- Whether a layer exists, and every layer's name (for the message of an unknown one).
SELECT bool_or(name = %(layer)s) AS found, string_agg(name, ', ' ORDER BY name) AS known FROM layers
