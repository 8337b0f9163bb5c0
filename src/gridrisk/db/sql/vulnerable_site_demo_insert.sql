-- The demo vulnerable sites in one statement, from parallel arrays (one history row each, by the trigger).
INSERT INTO vulnerable_sites (code, name, kind, geom, persons, persons_assisted, contact_person, contact_phone,
                              responsible_unit, address, district_code, created_by, updated_by)
SELECT u.code, u.name, u.kind, ST_GeomFromWKB(u.wkb, 4326), u.persons, u.assisted, u.contact, u.phone,
       u.unit, u.address, u.district, %(actor)s, %(actor)s
FROM unnest(%(code)s::text[], %(name)s::text[], %(kind)s::text[], %(wkb)s::bytea[], %(persons)s::int[],
            %(assisted)s::int[], %(contact)s::text[], %(phone)s::text[], %(unit)s::text[], %(address)s::text[],
            %(district)s::text[])
     AS u(code, name, kind, wkb, persons, assisted, contact, phone, unit, address, district)
ORDER BY u.code
