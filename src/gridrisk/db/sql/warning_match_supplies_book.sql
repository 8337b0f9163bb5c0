-- Reserve supplies for orders from depots.
INSERT INTO supply_reservations (order_id, depot_id, item, quantity, distance_m)
SELECT * FROM unnest(%(orders)s::bigint[], %(depots)s::bigint[], %(items)s::text[], %(quantities)s::int[],
                     %(distances)s::float8[])
