-- The shelters nearest a point, as a GeoJSON FeatureCollection text, nearest first.
-- The KNN scan (`<->` on geography, behind the GiST index ix_shelters_geog) orders by distance on
-- the sphere; the true distance is on the WGS 84 spheroid, up to ~0.5%% different. So the index
-- yields a few more candidates than asked for, and they are re-sorted by the spheroidal distance
-- (ST_Distance), which is the `distance_m` reported. Distance to a polygon is to its nearest edge
-- (0 inside it).
WITH cand AS (
    SELECT s.id, s.code, s.name, s.class, s.geom, s.capacity, s.occupancy, s.status, s.facilities, s.address,
           s.district_code, s.managing_unit
    FROM shelters s
    WHERE s.status = ANY(%(statuses)s::text[])
      AND (%(class)s::text IS NULL OR s.class = %(class)s)
      AND s.capacity - s.occupancy - shelter_reserved(s.id) >= %(min_free)s
    ORDER BY s.geom::geography <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography
    LIMIT %(candidates)s
),
ranked AS (
    SELECT c.*, ST_Distance(c.geom::geography, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography)
               AS distance_m
    FROM cand c
    ORDER BY distance_m, c.id
    LIMIT %(limit)s
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'origin', json_build_object('lon', %(lon)s::float8, 'lat', %(lat)s::float8),
    'inside_city', EXISTS (
        SELECT 1 FROM city_parts p
        WHERE p.geom && ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)
          AND ST_Intersects(p.geom, ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326))),
    'numberReturned', (SELECT count(*) FROM ranked),
    'features', (SELECT coalesce(json_agg(json_build_object(
        'type', 'Feature',
        'id', r.id,
        'geometry', ST_AsGeoJSON(r.geom, 7)::json,
        'properties', json_build_object(
            'distance_m', round(r.distance_m::numeric, 1),
            'code', r.code, 'name', r.name, 'class', r.class,
            'capacity', r.capacity, 'occupancy', r.occupancy,
            'free', CASE WHEN r.status = 'closed' THEN 0
                         ELSE greatest(r.capacity - r.occupancy - shelter_reserved(r.id), 0) END,
            'reserved', shelter_reserved(r.id),
            'status', r.status, 'facilities', r.facilities, 'address', r.address,
            'district_code', r.district_code, 'managing_unit', r.managing_unit)
    ) ORDER BY r.distance_m, r.id), '[]'::json) FROM ranked r)
)::text AS body
