-- Pin (or unpin, with %(colour)s NULL) a cell's colour; record the change, its history and event.
WITH target AS (
    SELECT r.cell_id, r.colour AS old_colour, r.computed_colour, r.layer, r.code
    FROM cell_risk r WHERE r.cell_id = %(cell_id)s FOR UPDATE
),
upd AS (
    UPDATE cell_risk r
    SET pinned_colour = %(colour)s, pin_reason = %(reason)s, pinned_by = %(by)s,
        pinned_at = CASE WHEN %(colour)s::text IS NULL THEN NULL ELSE clock_timestamp() END,
        colour = coalesce(%(colour)s, r.computed_colour),
        changed_at = CASE WHEN coalesce(%(colour)s, r.computed_colour) <> r.colour
                          THEN clock_timestamp() ELSE r.changed_at END
    FROM target t WHERE r.cell_id = t.cell_id
    RETURNING r.cell_id, r.colour, r.computed_colour, r.n_red, r.n_orange, r.n_yellow, r.n_blue, r.score,
              t.old_colour, t.layer, t.code
),
log AS (
    INSERT INTO cell_pins (cell_id, colour, reason, by, action)
    SELECT cell_id, %(colour)s, %(reason)s, %(by)s, CASE WHEN %(colour)s::text IS NULL THEN 'unpin' ELSE 'pin' END
    FROM upd
),
hist AS (
    INSERT INTO cell_colour_history (cell_id, at, old, new, computed, counts)
    SELECT cell_id, clock_timestamp(), old_colour, colour, computed_colour,
           jsonb_build_object('red', n_red, 'orange', n_orange, 'yellow', n_yellow, 'blue', n_blue, 'score', score)
    FROM upd WHERE colour <> old_colour
),
ev AS (
    INSERT INTO events (at, kind, payload)
    SELECT clock_timestamp(), 'cell_colour',
           jsonb_build_object('layer', layer, 'code', code, 'old', old_colour, 'new', colour,
                              'at', clock_timestamp(), 'pinned', %(colour)s::text IS NOT NULL)
    FROM upd WHERE colour <> old_colour
    RETURNING 1
)
SELECT (SELECT count(*) FROM ev) AS events, (SELECT count(*) FROM upd) AS updated
