-- The demo rescue teams in one statement, from parallel arrays (capabilities as {a,b} text).
INSERT INTO rescue_teams (code, name, team_type, sector, capabilities, members, equipment, geom, contact_person,
                          contact_phone, managing_unit, district_code, created_by, updated_by)
SELECT u.code, u.name, u.team_type, u.sector, string_to_array(u.capabilities, ','), u.members,
       u.equipment::jsonb, ST_GeomFromWKB(u.wkb, 4326), u.contact, u.phone, u.unit, u.district,
       %(actor)s, %(actor)s
FROM unnest(%(code)s::text[], %(name)s::text[], %(team_type)s::text[], %(sector)s::text[],
            %(capabilities)s::text[], %(members)s::int[], %(equipment)s::text[], %(wkb)s::bytea[],
            %(contact)s::text[], %(phone)s::text[], %(unit)s::text[], %(district)s::text[])
     AS u(code, name, team_type, sector, capabilities, members, equipment, wkb, contact, phone, unit, district)
ORDER BY u.code
