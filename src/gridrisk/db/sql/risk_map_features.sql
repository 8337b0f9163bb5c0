-- The four-colour map of one layer, one GeoJSON Feature per row (streamed by the API).
-- With %(at)s set, the colours and counts are those the history recorded at that moment.
SELECT json_build_object(
    'type', 'Feature',
    'id', c.code,
    'geometry', ST_AsGeoJSON(c.geom, 6)::json,
    'properties', CASE WHEN %(at)s::timestamptz IS NULL THEN json_build_object(
        'layer', c.layer, 'code', c.code, 'name', c.name, 'district_code', c.district_code,
        'colour', r.colour, 'computed_colour', r.computed_colour, 'pinned', r.pinned_colour IS NOT NULL,
        'score', r.score,
        'counts', json_build_object('red', r.n_red, 'orange', r.n_orange, 'yellow', r.n_yellow, 'blue', r.n_blue),
        'changed_at', r.changed_at)
    ELSE json_build_object(
        'layer', c.layer, 'code', c.code, 'name', c.name, 'district_code', c.district_code,
        'colour', coalesce(h.new, 'blue'), 'computed_colour', coalesce(h.computed, 'blue'),
        'score', coalesce((h.counts ->> 'score')::float8, 0),
        'counts', coalesce(h.counts - 'score', '{"red": 0, "orange": 0, "yellow": 0, "blue": 0}'::jsonb),
        'changed_at', h.at, 'as_of', %(at)s::timestamptz)
    END
)::text AS feature
FROM cells c
JOIN cell_risk r ON r.cell_id = c.id
LEFT JOIN LATERAL (
    SELECT hh.new, hh.computed, hh.counts, hh.at FROM cell_colour_history hh
    WHERE %(at)s::timestamptz IS NOT NULL AND hh.cell_id = c.id AND hh.at <= %(at)s::timestamptz
    ORDER BY hh.at DESC, hh.id DESC LIMIT 1
) h ON true
WHERE c.layer = %(layer)s
  AND (%(bbox)s::float8[] IS NULL
       OR c.geom && ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2], %(bbox)s[3], %(bbox)s[4], 4326))
ORDER BY c.code
