-- Shelters as the nearest-shelter answer lists them: one definition for the query that answers in
-- the database (db/sql/shelter_nearest.sql) and the load that answers from memory
-- (db/sql/shelter_sites.sql, lookup/shelters.py), so the two answers stay byte for byte the same.

-- One shelter as a GeoJSON Feature: P_RESERVED places still held for evacuees of live work orders
-- (shelter_reserved), P_DISTANCE_M its distance from the point asked about (NULL: written in later
-- by the caller, who splits the text at `"distance_m" : null`). `free` is what can be offered to
-- anybody else, none in a closed shelter.
CREATE OR REPLACE FUNCTION shelter_nearest_feature(s shelters, p_reserved integer, p_distance_m double precision)
RETURNS json LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT json_build_object(
        'type', 'Feature',
        'id', s.id,
        'geometry', ST_AsGeoJSON(s.geom, 7)::json,
        'properties', json_build_object(
            'distance_m', round(p_distance_m::numeric, 1),
            'code', s.code, 'name', s.name, 'class', s.class,
            'capacity', s.capacity, 'occupancy', s.occupancy,
            'free', CASE WHEN s.status = 'closed' THEN 0
                         ELSE greatest(s.capacity - s.occupancy - p_reserved, 0) END,
            'reserved', p_reserved,
            'status', s.status, 'facilities', s.facilities, 'address', s.address,
            'district_code', s.district_code, 'managing_unit', s.managing_unit))
$$;
