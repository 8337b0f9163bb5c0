-- Before the outbox reader starts: when the oldest transaction of this database began (its event
-- ids can only be newer than that), and the writers whose start is hidden from this role (they are
-- waited for instead). Read before the snapshot that follows.
SELECT clock_timestamp() AS now,
       min(xact_start) AS oldest,
       coalesce(array_agg(backend_xid::text::bigint)
                FILTER (WHERE xact_start IS NULL AND backend_xid IS NOT NULL), '{}') AS hidden
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
