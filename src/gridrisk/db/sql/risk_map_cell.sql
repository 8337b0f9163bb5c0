-- One cell's place on the four-colour map.
SELECT c.layer, c.code, c.name, c.district_code, r.colour, r.computed_colour, r.pinned_colour,
       r.pin_reason, r.pinned_by, r.pinned_at, r.score, r.changed_at,
       json_build_object('red', r.n_red, 'orange', r.n_orange, 'yellow', r.n_yellow, 'blue', r.n_blue) AS counts
FROM cells c JOIN cell_risk r ON r.cell_id = c.id
WHERE c.layer = %(layer)s AND c.code = %(code)s
