-- What targeted warnings need from the database itself: the scale their response actions escalate
-- along. (Their events, warning and work_order, are written in outbox_events.sql.)

-- Actions from weakest to strongest: an order is only ever escalated along this scale.
CREATE OR REPLACE FUNCTION warning_action_rank(p_action text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_position(ARRAY['none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate'],
                          p_action)
$$;
