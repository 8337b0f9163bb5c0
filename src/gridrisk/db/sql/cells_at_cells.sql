-- One layer's cells in code order (the order of the edge rule in cells_at.sql: ORDER BY c.code),
-- each with its static members rendered exactly as cells_at.sql renders them.
SELECT c.id, c.code,
       json_build_object(
           'code', c.code, 'name', c.name, 'district_code', c.district_code,
           'street_code', c.street_code, 'community_code', c.community_code,
           'population', c.population
       )::text AS head
FROM cells c
WHERE c.layer = %(layer)s
ORDER BY c.code
