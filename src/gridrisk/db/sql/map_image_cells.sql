-- The cells of a layer to draw, simplified to the picture's pixel (%(tolerance)s degrees), with their
-- colour now or as the history recorded it at %(at)s; in %(bbox)s, or of district %(district)s.
SELECT ST_AsBinary(ST_SimplifyPreserveTopology(c.geom, %(tolerance)s)) AS wkb,
       CASE WHEN %(at)s::timestamptz IS NULL THEN r.colour ELSE coalesce(h.new, 'blue') END AS colour
FROM cells c
JOIN cell_risk r ON r.cell_id = c.id
LEFT JOIN LATERAL (
    SELECT hh.new FROM cell_colour_history hh
    WHERE %(at)s::timestamptz IS NOT NULL AND hh.cell_id = c.id AND hh.at <= %(at)s::timestamptz
    ORDER BY hh.at DESC, hh.id DESC LIMIT 1
) h ON true
WHERE c.layer = %(layer)s
  AND (%(district)s::text IS NULL OR c.district_code = %(district)s)
  AND (%(bbox)s::float8[] IS NULL
       OR c.geom && ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2], %(bbox)s[3], %(bbox)s[4], 4326))
