-- For each point (in order): the whole "which cell am I in" answer, built here as JSON text.
-- A point on a shared edge or vertex touches several cells; the smallest code wins, every time.
-- Each point's cells are found and aggregated in its own LATERAL, so a trace of 10,000 points
-- costs 10,000 lookups (a CTE of every point's hits, searched once per point, cost n²).
WITH pts AS (
    SELECT u.ord, u.lon, u.lat, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS g
    FROM unnest(%(lons)s::float8[], %(lats)s::float8[]) WITH ORDINALITY AS u(lon, lat, ord)
)
SELECT p.ord, a.inside_city, a.found,
       json_build_object(
           'lon', p.lon, 'lat', p.lat, 'inside_city', a.inside_city,
           'cells', a.cells,
           'admin', a.admin
       )::text AS body
FROM pts p
CROSS JOIN LATERAL (
    WITH hits AS (
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
        FROM cell_pieces cp
        JOIN cells c ON c.id = cp.cell_id
        JOIN cell_risk r ON r.cell_id = c.id
        WHERE cp.geom && p.g AND ST_Intersects(cp.geom, p.g)
        ORDER BY c.layer, c.code
    )
    SELECT EXISTS (SELECT 1 FROM city_parts cp WHERE cp.geom && p.g AND ST_Intersects(cp.geom, p.g))
               AS inside_city,
           EXISTS (SELECT 1 FROM hits) AS found,
           (SELECT json_object_agg(l.name, h.cell ORDER BY l.name)
            FROM layers l LEFT JOIN hits h ON h.layer = l.name
            WHERE l.kind = 'grid') AS cells,
           (SELECT json_object_agg(l.name, h.cell ORDER BY l.name)
            FROM layers l LEFT JOIN hits h ON h.layer = l.name
            WHERE l.kind = 'admin') AS admin
) a
ORDER BY p.ord
