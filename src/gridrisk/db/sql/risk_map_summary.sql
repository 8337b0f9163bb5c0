-- Cells per colour of one layer, per district and for the whole city (now, or as of %(at)s).
WITH colours AS (
    SELECT c.district_code,
           CASE WHEN %(at)s::timestamptz IS NULL THEN r.colour
                ELSE coalesce((SELECT h.new FROM cell_colour_history h
                               WHERE h.cell_id = c.id AND h.at <= %(at)s::timestamptz
                               ORDER BY h.at DESC, h.id DESC LIMIT 1), 'blue') END AS colour
    FROM cells c JOIN cell_risk r ON r.cell_id = c.id
    WHERE c.layer = %(layer)s
),
per_district AS (
    SELECT district_code,
           count(*) FILTER (WHERE colour = 'red') AS red,
           count(*) FILTER (WHERE colour = 'orange') AS orange,
           count(*) FILTER (WHERE colour = 'yellow') AS yellow,
           count(*) FILTER (WHERE colour = 'blue') AS blue,
           count(*) AS total
    FROM colours GROUP BY district_code
)
SELECT json_build_object(
    'layer', %(layer)s::text,
    'as_of', %(at)s::timestamptz,
    'city', (SELECT json_build_object('red', coalesce(sum(red), 0), 'orange', coalesce(sum(orange), 0),
                                      'yellow', coalesce(sum(yellow), 0), 'blue', coalesce(sum(blue), 0),
                                      'total', coalesce(sum(total), 0)) FROM per_district),
    'districts', (SELECT coalesce(json_agg(json_build_object(
                      'code', p.district_code, 'name', d.name, 'red', p.red, 'orange', p.orange,
                      'yellow', p.yellow, 'blue', p.blue, 'total', p.total) ORDER BY p.district_code), '[]'::json)
                  FROM per_district p LEFT JOIN cells d ON d.layer = 'district' AND d.code = p.district_code)
)::text AS body
