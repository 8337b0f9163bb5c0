-- The shelters %(ids)s (NULL: every one) as the nearest-shelter answers kept in memory hold them
-- (lookup/shelter_sites.py): what the filters of GET /shelters/nearest read (status, class, the
-- places left once those held for evacuees are counted: `spare`), the site, and the feature as
-- shelter_nearest.sql writes it, with its distance left out (`"distance_m" : null`, filled in per
-- answer). A shelter asked for that is gone has no row.
SELECT s.id, s.status, s.class,
       s.capacity - s.occupancy - coalesce(h.reserved, 0) AS spare,
       ST_AsBinary(s.geom) AS wkb,
       shelter_nearest_feature(s, coalesce(h.reserved, 0), NULL)::text AS feature
FROM shelters s
LEFT JOIN (
    SELECT r.shelter_id, sum(r.persons - r.checked_in)::int AS reserved
    FROM shelter_reservations r
    WHERE r.released_at IS NULL
      AND (%(ids)s::bigint[] IS NULL OR r.shelter_id = ANY(%(ids)s::bigint[]))
    GROUP BY r.shelter_id
) h ON h.shelter_id = s.id
WHERE %(ids)s::bigint[] IS NULL OR s.id = ANY(%(ids)s::bigint[])
ORDER BY s.id
