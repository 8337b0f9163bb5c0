-- Upsert the staged shelters by code in one statement: (inserted, updated).
-- Registered shelters get a new version only when something changed (geometries compared at 1e-7°,
-- about a centimetre: the precision GET /shelters exports). A status the file leaves out is kept;
-- an open shelter is `full` when its occupancy reaches the (new) capacity, and back. Occupancy is
-- never imported. New shelters are standby unless the file says otherwise.
WITH up AS (
    UPDATE shelters r SET
        name = s.name, class = s.class, geom = s.geom, total_area_m2 = s.total_area_m2,
        effective_area_m2 = s.effective_area_m2, capacity = s.capacity,
        status = CASE WHEN coalesce(s.status, r.status) IN ('open', 'full')
                      THEN CASE WHEN r.occupancy >= s.capacity THEN 'full' ELSE 'open' END
                      ELSE coalesce(s.status, r.status) END,
        facilities = s.facilities, address = s.address, district_code = s.district_code,
        managing_unit = s.managing_unit,
        version = r.version + 1, updated_at = now(), updated_by = %(actor)s
    FROM import_stage s
    WHERE r.code = s.code
      AND ((r.name, r.class, ST_AsEWKB(ST_SnapToGrid(r.geom, 1e-7)), r.total_area_m2, r.effective_area_m2,
           r.capacity, r.facilities, r.address, r.district_code, r.managing_unit)
          IS DISTINCT FROM
          (s.name, s.class, ST_AsEWKB(ST_SnapToGrid(s.geom, 1e-7)), s.total_area_m2, s.effective_area_m2,
           s.capacity, s.facilities, s.address, s.district_code, s.managing_unit)
           OR (s.status IS NOT NULL
               AND s.status <> CASE WHEN r.status = 'full' THEN 'open' ELSE r.status END))
    RETURNING 1
),
ins AS (
    INSERT INTO shelters (code, name, class, geom, total_area_m2, effective_area_m2, capacity, status,
                          facilities, address, district_code, managing_unit, created_by, updated_by)
    SELECT s.code, s.name, s.class, s.geom, s.total_area_m2, s.effective_area_m2, s.capacity,
           CASE WHEN coalesce(s.status, 'standby') = 'open' AND s.capacity = 0 THEN 'full'
                ELSE coalesce(s.status, 'standby') END,
           s.facilities, s.address, s.district_code, s.managing_unit, %(actor)s, %(actor)s
    FROM import_stage s
    WHERE NOT EXISTS (SELECT 1 FROM shelters r WHERE r.code = s.code)
    ORDER BY s.code
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS inserted, (SELECT count(*) FROM up) AS updated
