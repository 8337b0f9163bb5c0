-- Live orders of warning %(warning_id)s whose notes say something was missing: matched again, their
-- notes are written afresh (empty once everything is booked).
SELECT id FROM work_orders
WHERE warning_id = %(warning_id)s AND status IN ('open', 'acknowledged', 'in_progress') AND match_notes <> '[]'
