-- The work order a rescue team is booked for, if any (one unreleased booking per team at most).
SELECT b.order_id, o.warning_id, b.capability
FROM work_order_teams b JOIN work_orders o ON o.id = b.order_id
WHERE b.team_id = %(id)s AND b.released_at IS NULL
