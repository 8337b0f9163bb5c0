-- The demo hazard points in one statement, from parallel arrays: the statement-level triggers then
-- assign every point to its cells and recolour the map once, as for any other write.
INSERT INTO hazard_points (code, name, kind, geom, threatened_persons, property_value, level, status,
                           status_dates, responsible_person, responsible_unit, notes, address,
                           district_code, created_by, updated_by)
SELECT u.code, u.name, u.kind, ST_GeomFromWKB(u.wkb, 4326), u.persons, u.value, u.level, u.status,
       u.dates::jsonb, u.person, u.unit, u.notes, u.address, u.district, %(actor)s, %(actor)s
FROM unnest(%(code)s::text[], %(name)s::text[], %(kind)s::text[], %(wkb)s::bytea[], %(persons)s::int[],
            %(value)s::float8[], %(level)s::text[], %(status)s::text[], %(dates)s::text[],
            %(person)s::text[], %(unit)s::text[], %(notes)s::text[], %(address)s::text[],
            %(district)s::text[])
     AS u(code, name, kind, wkb, persons, value, level, status, dates, person, unit, notes, address, district)
ORDER BY u.code
