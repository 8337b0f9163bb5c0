-- Every layer's name, comma-separated in name order (for the message of an unknown layer).
SELECT string_agg(name, ', ' ORDER BY name) AS names FROM layers
