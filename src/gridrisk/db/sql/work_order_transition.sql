-- One status change of a (locked) work order, and its history row: done keeps the note, photo and
-- the worker's location with its distance to the target; cancelled keeps the reason.
WITH loc AS (
    SELECT CASE WHEN %(lon)s::float8 IS NULL THEN NULL
                ELSE ST_SetSRID(ST_MakePoint(%(lon)s::float8, %(lat)s::float8), 4326) END AS g
),
upd AS (
    UPDATE work_orders o
    SET status = %(to)s,
        acknowledged_at = CASE WHEN %(to)s = 'acknowledged' THEN now() ELSE o.acknowledged_at END,
        done_at = CASE WHEN %(to)s = 'done' THEN now() ELSE o.done_at END,
        done_by = CASE WHEN %(to)s = 'done' THEN %(who)s ELSE o.done_by END,
        done_note = CASE WHEN %(to)s = 'done' THEN %(note)s ELSE o.done_note END,
        photo_url = CASE WHEN %(to)s = 'done' THEN %(photo_url)s ELSE o.photo_url END,
        done_location = CASE WHEN %(to)s = 'done' THEN loc.g ELSE o.done_location END,
        done_distance_m = CASE WHEN %(to)s = 'done' THEN ST_Distance(loc.g::geography, o.geom::geography)
                               ELSE o.done_distance_m END,
        cancelled_at = CASE WHEN %(to)s = 'cancelled' THEN now() ELSE o.cancelled_at END,
        cancel_cause = CASE WHEN %(to)s = 'cancelled' THEN 'manual' ELSE o.cancel_cause END,
        cancel_reason = CASE WHEN %(to)s = 'cancelled' THEN %(note)s ELSE o.cancel_reason END,
        version = o.version + 1, updated_at = now(), updated_by = %(who)s
    FROM loc
    WHERE o.id = %(id)s
    RETURNING o.id, o.version, o.status, o.action, o.geom
)
INSERT INTO work_order_history (order_id, version, at, by, op, from_status, to_status, action, note, photo_url,
                                location, distance_m)
SELECT u.id, u.version, now(), %(who)s, 'transition', %(from)s, u.status, u.action, %(note)s, %(photo_url)s,
       loc.g, ST_Distance(loc.g::geography, u.geom::geography)
FROM upd u, loc
