-- Every version of one hazard point. A status change carries `transition` (from, to, and the note
-- and field person the transition endpoint stored under changes->'_transition').
SELECT version, at, by, op, changes - '_transition' AS changes,
       CASE WHEN op <> 'create' AND changes ? 'status' THEN jsonb_build_object(
           'from', changes -> 'status' -> 0, 'to', changes -> 'status' -> 1,
           'note', changes -> '_transition' -> 'note', 'by', changes -> '_transition' -> 'by')
       END AS transition
FROM hazard_point_history
WHERE hazard_id = %(id)s
ORDER BY version
