-- An address plate: where it is, the cell of every layer at that point (with its colour, as
-- /cells/at answers it: the smallest code wins on a shared edge), and what is registered there.
-- The plate's location is its risk source's point, or a point inside it for a polygon.
-- No row when no risk source carries the plate.
WITH src AS (
    SELECT s.id, s.code, s.name, s.category, s.level, s.status, s.address,
           CASE WHEN GeometryType(s.geom) = 'POINT' THEN s.geom ELSE ST_PointOnSurface(s.geom) END AS pt
    FROM risk_sources s
    WHERE s.plate_code = %(plate)s
),
here AS (
    SELECT pt, address FROM src ORDER BY id LIMIT 1
),
hits AS (
    SELECT DISTINCT ON (c.layer) c.layer, json_build_object(
        'code', c.code, 'name', c.name, 'district_code', c.district_code,
        'street_code', c.street_code, 'community_code', c.community_code,
        'population', c.population,
        'colour', r.colour, 'computed_colour', r.computed_colour, 'score', r.score,
        'counts', json_build_object('red', r.n_red, 'orange', r.n_orange,
                                    'yellow', r.n_yellow, 'blue', r.n_blue),
        'workers', (SELECT coalesce(json_agg(json_build_object('name', w.name, 'phone', w.phone)
                                             ORDER BY w.id), '[]'::json)
                    FROM cell_workers w WHERE w.layer = c.layer AND w.cell_code = c.code)
    ) AS cell
    FROM here h
    JOIN cell_pieces cp ON cp.geom && h.pt AND ST_Intersects(cp.geom, h.pt)
    JOIN cells c ON c.id = cp.cell_id
    JOIN cell_risk r ON r.cell_id = c.id
    ORDER BY c.layer, c.code
)
SELECT json_build_object(
           'plate_code', %(plate)s::text,
           'address', h.address,
           'location', ST_AsGeoJSON(h.pt, 7)::json,
           'inside_city', EXISTS (SELECT 1 FROM city_parts p WHERE p.geom && h.pt AND ST_Intersects(p.geom, h.pt)),
           'cells', coalesce((SELECT json_object_agg(l.name, x.cell ORDER BY l.name)
                              FROM layers l LEFT JOIN hits x ON x.layer = l.name
                              WHERE l.kind = 'grid'), '{}'::json),
           'admin', coalesce((SELECT json_object_agg(l.name, x.cell ORDER BY l.name)
                              FROM layers l LEFT JOIN hits x ON x.layer = l.name
                              WHERE l.kind = 'admin'), '{}'::json),
           'risk_sources', (SELECT json_agg(json_build_object('id', s.id, 'code', s.code, 'name', s.name,
                                                              'category', s.category, 'level', s.level,
                                                              'status', s.status) ORDER BY s.id)
                            FROM src s)
       )::text AS body
FROM here h
