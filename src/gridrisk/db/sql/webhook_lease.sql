-- Take one enabled endpoint with deliveries due that no worker holds, for %(lease_s)s seconds: its
-- oldest pending deliveries go out in order, by this worker alone. SKIP LOCKED: workers never wait.
UPDATE webhook_endpoints e SET lease_until = now() + make_interval(secs => %(lease_s)s)
WHERE e.id = (
    SELECT w.id FROM webhook_endpoints w
    WHERE w.enabled AND (w.lease_until IS NULL OR w.lease_until < now())
      AND EXISTS (SELECT 1 FROM webhook_deliveries d
                  WHERE d.endpoint_id = w.id AND d.status = 'pending' AND d.next_at <= now())
    ORDER BY w.id
    FOR UPDATE SKIP LOCKED
    LIMIT 1
)
RETURNING e.id, e.url, e.secret
