-- For each group of people (order, point), the %(k)s shelters of %(shelters)s nearest it (all when
-- NULL), with the true distance to the site (geodesic, WGS 84; 0 inside a polygon site).
SELECT g.order_id, c.id AS shelter_id, ST_Distance(c.geom::geography, p.pt::geography) AS distance_m
FROM unnest(%(orders)s::bigint[], %(lons)s::float8[], %(lats)s::float8[]) AS g(order_id, lon, lat)
CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(g.lon, g.lat), 4326) AS pt) p
CROSS JOIN LATERAL (
    SELECT s.id, s.geom FROM shelters s
    WHERE s.id = ANY(%(shelters)s::bigint[])
    ORDER BY s.geom::geography <-> p.pt::geography
    LIMIT %(k)s
) c
