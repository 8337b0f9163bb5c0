-- What targeted warnings need from the database itself: the scale their response actions escalate
-- along, and the release of what an order had booked when it ends. (Their events, warning and
-- work_order, are written in outbox_events.sql.)

-- Actions from weakest to strongest: an order is only ever escalated along this scale.
CREATE OR REPLACE FUNCTION warning_action_rank(p_action text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_position(ARRAY['none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate'],
                          p_action)
$$;

-- An order that ends (done or cancelled, including expired) releases what the matching booked for
-- it, whatever ended it (a worker, a cancellation, the expiry job, plain SQL): its team is free
-- again, its shelter places go back, and its supplies go back to the depot, or, for an order done,
-- are drawn from the depot's stock. Set-based over the statement's rows: a city-wide cancellation
-- is one statement per kind of booking, not one per order.
CREATE OR REPLACE FUNCTION work_orders_release() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ended bigint[];
    done bigint[];
    d record;
BEGIN
    SELECT array_agg(n.id), array_agg(n.id) FILTER (WHERE n.status = 'done')
    INTO ended, done
    -- FULL JOIN and non-strict tests, as in map_items_updated (cell_assignment.sql): always hashed.
    FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
    WHERE (n.status IN ('done', 'cancelled')) IS TRUE AND (o.status IN ('done', 'cancelled')) IS NOT TRUE;
    IF ended IS NULL THEN
        RETURN NULL;
    END IF;
    UPDATE work_order_teams SET released_at = now() WHERE order_id = ANY(ended) AND released_at IS NULL;
    UPDATE shelter_reservations SET released_at = now() WHERE order_id = ANY(ended) AND released_at IS NULL;
    FOR d IN
        WITH freed AS (
            UPDATE supply_reservations r SET released_at = now(),
                   consumed = CASE WHEN r.order_id = ANY(done) THEN r.quantity ELSE 0 END
            WHERE r.order_id = ANY(ended) AND r.released_at IS NULL
            RETURNING r.depot_id, r.item, r.consumed
        )
        SELECT depot_id, jsonb_object_agg(item, drawn) AS drawn
        FROM (SELECT depot_id, item, sum(consumed)::int AS drawn FROM freed WHERE consumed > 0
              GROUP BY depot_id, item) x
        GROUP BY depot_id ORDER BY depot_id
    LOOP
        UPDATE supply_depots s
        SET stock = (SELECT jsonb_object_agg(k.key, CASE WHEN d.drawn ? k.key
                                                    THEN greatest(0, k.value::int - (d.drawn ->> k.key)::int)
                                                    ELSE k.value::int END)
                     FROM jsonb_each_text(s.stock) k)
        WHERE s.id = d.depot_id;
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER work_orders_release AFTER UPDATE ON work_orders
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION work_orders_release();

-- The places of a shelter that live work orders hold for their evacuees (the matching reserves
-- them): not free for anybody else, though the people they are held for may check in. Evacuees
-- checked in with their order's id count in the occupancy instead (checked_in), never twice.
CREATE OR REPLACE FUNCTION shelter_reserved(p_shelter bigint) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(sum(persons - checked_in), 0)::int FROM shelter_reservations
    WHERE shelter_id = p_shelter AND released_at IS NULL
$$;
