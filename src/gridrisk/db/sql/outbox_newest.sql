-- The outbox probe's question (events/probe.py): the newest committed id, read backward from the
-- primary key's index. NULL for an empty outbox. When it is at or below the reader's position and
-- no id is missing, a full read (outbox_read.sql) would find nothing.
SELECT max(id) FROM events
