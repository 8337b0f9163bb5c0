-- The demo shelters in one statement, from parallel arrays (one history row each, by the trigger).
INSERT INTO shelters (code, name, class, geom, total_area_m2, effective_area_m2, capacity, occupancy, status,
                      facilities, address, district_code, managing_unit, created_by, updated_by)
SELECT u.code, u.name, u.class, ST_GeomFromWKB(u.wkb, 4326), u.total, u.effective, u.capacity, u.occupancy,
       u.status, u.facilities::jsonb, u.address, u.district, u.unit, %(actor)s, %(actor)s
FROM unnest(%(code)s::text[], %(name)s::text[], %(class)s::text[], %(wkb)s::bytea[], %(total)s::float8[],
            %(effective)s::float8[], %(capacity)s::int[], %(occupancy)s::int[], %(status)s::text[],
            %(facilities)s::text[], %(address)s::text[], %(district)s::text[], %(unit)s::text[])
     AS u(code, name, class, wkb, total, effective, capacity, occupancy, status, facilities, address, district,
          unit)
ORDER BY u.code
