-- Reserve shelter places for orders' people.
INSERT INTO shelter_reservations (order_id, shelter_id, persons, distance_m)
SELECT * FROM unnest(%(orders)s::bigint[], %(shelters)s::bigint[], %(persons)s::int[], %(distances)s::float8[])
