-- For each point (in order): is it inside the city, and the containing cell of every layer.
-- A point on a shared edge or vertex touches several cells; the smallest code wins, every time.
WITH pts AS (
    SELECT u.ord, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326) AS g
    FROM unnest(%(lons)s::float8[], %(lats)s::float8[]) WITH ORDINALITY AS u(lon, lat, ord)
)
SELECT p.ord,
       EXISTS (SELECT 1 FROM city_parts cp WHERE cp.geom && p.g AND ST_Intersects(cp.geom, p.g))
           AS inside_city,
       (SELECT coalesce(json_object_agg(h.layer, h.cell), '{}'::json)
        FROM (
            SELECT DISTINCT ON (c.layer) c.layer, json_build_object(
                'code', c.code, 'name', c.name, 'district_code', c.district_code,
                'street_code', c.street_code, 'community_code', c.community_code,
                'population', c.population,
                'workers', (SELECT coalesce(json_agg(json_build_object('name', w.name, 'phone', w.phone)
                                                     ORDER BY w.id), '[]'::json)
                            FROM cell_workers w WHERE w.layer = c.layer AND w.cell_code = c.code)
            ) AS cell
            FROM cell_pieces cp
            JOIN cells c ON c.id = cp.cell_id
            WHERE cp.geom && p.g AND ST_Intersects(cp.geom, p.g)
            ORDER BY c.layer, c.code
        ) h)::text AS cells
FROM pts p
ORDER BY p.ord
