-- The demo supply depots in one statement, from parallel arrays (stock as JSON text).
INSERT INTO supply_depots (code, name, level, geom, area_m2, stock, contact_person, contact_phone,
                           managing_unit, district_code, created_by, updated_by)
SELECT u.code, u.name, u.level, ST_GeomFromWKB(u.wkb, 4326), u.area, u.stock::jsonb, u.contact, u.phone,
       u.unit, u.district, %(actor)s, %(actor)s
FROM unnest(%(code)s::text[], %(name)s::text[], %(level)s::text[], %(wkb)s::bytea[], %(area)s::float8[],
            %(stock)s::text[], %(contact)s::text[], %(phone)s::text[], %(unit)s::text[], %(district)s::text[])
     AS u(code, name, level, wkb, area, stock, contact, phone, unit, district)
ORDER BY u.code
