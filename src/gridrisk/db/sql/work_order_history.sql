-- Every state change of one work order, oldest first.
SELECT version, at, by, op, from_status, to_status, action, note, photo_url,
       ST_AsGeoJSON(location, 7)::json AS location, round(distance_m::numeric, 1)::float8 AS distance_m
FROM work_order_history
WHERE order_id = %(id)s
ORDER BY id
