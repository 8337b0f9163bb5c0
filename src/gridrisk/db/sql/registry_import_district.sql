-- Staged import rows without a district get the one holding their point on surface (on a shared
-- edge the smallest code wins, as in district_of.sql).
UPDATE import_stage s
SET district_code = (
    SELECT c.code
    FROM cell_pieces p JOIN cells c ON c.id = p.cell_id
    WHERE p.layer = 'district' AND p.geom && ST_PointOnSurface(s.geom)
      AND ST_Intersects(p.geom, ST_PointOnSurface(s.geom))
    ORDER BY c.code
    LIMIT 1)
WHERE s.district_code IS NULL
