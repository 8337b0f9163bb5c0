-- The shelters nearest a point, as a GeoJSON FeatureCollection text, nearest first.
-- The KNN scan (`<->` on geography, behind the GiST index ix_shelters_geog) orders by distance on
-- the sphere; the true distance is on the WGS 84 spheroid, up to ~0.5%% different. So the index
-- yields a few more candidates than asked for, and they are re-sorted by the spheroidal distance
-- (ST_Distance), which is the `distance_m` reported. Distance to a polygon is to its nearest edge
-- (0 inside it).
-- Places held for evacuees are summed once for the candidates (one grouped read), not per row
-- scanned: the scan filters on capacity − occupancy alone, which can only let more through. When
-- the held places then leave fewer than %(limit)s of a full candidate list, `scan_more` says so and
-- the caller asks again with every shelter as a candidate, so the answer stays exact.
WITH knn AS MATERIALIZED (
    SELECT s AS site, s.id, s.geom, s.capacity, s.occupancy
    FROM shelters s
    WHERE s.status = ANY(%(statuses)s::text[])
      AND (%(class)s::text IS NULL OR s.class = %(class)s)
      AND s.capacity - s.occupancy >= %(min_free)s
    ORDER BY s.geom::geography <-> ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326)::geography
    LIMIT %(candidates)s
),
held AS (
    SELECT r.shelter_id, sum(r.persons - r.checked_in)::int AS reserved
    FROM shelter_reservations r
    WHERE r.shelter_id IN (SELECT id FROM knn) AND r.released_at IS NULL
    GROUP BY r.shelter_id
),
cand AS (
    SELECT k.*, coalesce(h.reserved, 0) AS reserved
    FROM knn k LEFT JOIN held h ON h.shelter_id = k.id
    WHERE k.capacity - k.occupancy - coalesce(h.reserved, 0) >= %(min_free)s
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
    'features', (SELECT coalesce(json_agg(shelter_nearest_feature(r.site, r.reserved, r.distance_m)
        ORDER BY r.distance_m, r.id), '[]'::json) FROM ranked r)
)::text AS body,
       (SELECT count(*) FROM ranked) < %(limit)s
       AND (SELECT count(*) FROM knn) = %(candidates)s AS scan_more
