-- Write the matching's outcome on the orders it worked on: the main shelter (most of the people)
-- with its distance and a note on the split, and what could not be booked (match_notes).
UPDATE work_orders o
SET shelter_id = coalesce(u.shelter_id, o.shelter_id),
    shelter_distance_m = CASE WHEN u.shelter_id IS NOT NULL THEN u.distance_m ELSE o.shelter_distance_m END,
    shelter_note = coalesce(u.shelter_note, o.shelter_note),
    match_notes = u.notes
FROM unnest(%(orders)s::bigint[], %(shelters)s::bigint[], %(distances)s::float8[], %(shelter_notes)s::text[],
            %(notes)s::jsonb[]) AS u(id, shelter_id, distance_m, shelter_note, notes)
WHERE o.id = u.id
