-- Book teams for orders (one unreleased booking per team: the unique index backs the lock).
INSERT INTO work_order_teams (order_id, team_id, capability, distance_m)
SELECT * FROM unnest(%(orders)s::bigint[], %(teams)s::bigint[], %(capabilities)s::text[], %(distances)s::float8[])
