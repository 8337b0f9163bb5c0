-- Wake the event hub after a pin: risk_map_pin.sql writes its cell_colour event straight into
-- events, not through outbox_write (which notifies by itself).
SELECT pg_notify('gridrisk_events', '')
