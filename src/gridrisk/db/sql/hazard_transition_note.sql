-- Annotate the history row the trigger just wrote for a transition: its op, the note and who
-- carried it out (the trigger cannot know them; same transaction, so never seen without them).
UPDATE hazard_point_history
SET op = CASE WHEN op = 'close' THEN 'close' ELSE 'transition' END,
    changes = changes || jsonb_build_object('_transition', jsonb_build_object('note', %(note)s::text,
                                                                              'by', %(by)s::text))
WHERE hazard_id = %(id)s AND version = %(version)s
