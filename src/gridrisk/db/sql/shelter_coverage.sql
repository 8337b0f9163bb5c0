-- Shelter coverage of one layer, per cell (SPEC.md "Shelters"). A shelter that is not closed reaches
-- a cell when the cell's centroid lies within the service radius of the shelter's class (geodesic
-- distance on the WGS 84 spheroid, from the nearest point of the shelter's outline). Each shelter's
-- capacity is shared among the cells it reaches in proportion to their population (a shelter that
-- reaches only empty cells shares nothing); a cell's capacity is the sum of its shares.
--
-- The candidate pairs come from the cells' GiST index, one probe per shelter (about 300), with the
-- shelter's box widened by the radius in degrees, deliberately a little too wide: the longitude
-- span is taken at the latitude farthest from the equator the circle can reach. A cell's centroid
-- lies inside the cell's bounding box, so no cell whose centroid is in reach can be missed; the
-- exact geodesic ST_DWithin then decides. (Probing the shelters' geography index once per cell and
-- class instead costs 36,000 probes for the 12,000-cell layer, about 7× slower.)
WITH reach AS MATERIALIZED (
    SELECT s.id AS shelter_id, s.class, s.capacity, c.id AS cell_id, c.population
    FROM shelters s
    JOIN shelter_classes k ON k.class = s.class
    -- OFFSET 0 keeps the box probe on its own, so it is always the GiST probe: offered the layer
    -- as well, the planner may scan the layer's cells once per shelter instead (seen: 10× slower).
    CROSS JOIN LATERAL (
        SELECT c.id, c.layer, c.population, c.geom
        FROM cells c
        WHERE c.geom && ST_Expand(
                  s.geom,
                  1.01 * k.service_radius_m / (111320.0 * cos(radians(least(89.0,
                      greatest(abs(ST_YMin(s.geom)), abs(ST_YMax(s.geom))) + k.service_radius_m / 110540.0)))),
                  1.01 * k.service_radius_m / 110540.0)
        OFFSET 0
    ) c
    WHERE s.status <> 'closed'
      AND c.layer = %(layer)s
      AND ST_DWithin(s.geom::geography, ST_Centroid(c.geom)::geography, k.service_radius_m)
),
shares AS (
    SELECT r.cell_id, r.class, r.shelter_id,
           CASE WHEN sum(r.population) OVER w > 0
                THEN r.capacity * r.population::float8 / sum(r.population) OVER w
                ELSE 0 END AS share
    FROM reach r
    WINDOW w AS (PARTITION BY r.shelter_id)
),
per_cell AS (
    SELECT cell_id, sum(share) AS capacity, array_agg(shelter_id ORDER BY shelter_id) AS shelter_ids
    FROM shares
    GROUP BY cell_id
),
per_cell_class AS (
    SELECT cell_id, jsonb_object_agg(class, capacity) AS by_class
    FROM (SELECT cell_id, class, sum(share) AS capacity FROM shares GROUP BY cell_id, class) x
    GROUP BY cell_id
)
SELECT c.id, c.code, c.name, c.district_code, c.population,
       coalesce(p.capacity, 0) AS capacity,
       -- Every class appears, with 0 where none of its shelters reaches the cell.
       (SELECT jsonb_object_agg(k.class, coalesce((pc.by_class ->> k.class)::float8, 0)) FROM shelter_classes k)
           AS by_class,
       coalesce(p.shelter_ids, '{}') AS shelter_ids
FROM cells c
LEFT JOIN per_cell p ON p.cell_id = c.id
LEFT JOIN per_cell_class pc ON pc.cell_id = c.id
WHERE c.layer = %(layer)s
