-- The live members of the given cells (colour, computed colour, score, counts), rendered exactly
-- as cells_at.sql renders them.
SELECT r.cell_id,
       json_build_object(
           'colour', r.colour, 'computed_colour', r.computed_colour, 'score', r.score,
           'counts', json_build_object('red', r.n_red, 'orange', r.n_orange,
                                       'yellow', r.n_yellow, 'blue', r.n_blue)
       )::text AS live
FROM cell_risk r
WHERE r.cell_id = ANY(%(ids)s::bigint[])
