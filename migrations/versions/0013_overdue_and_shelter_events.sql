-- 0013: orders remember when their overdue was announced; webhooks may subscribe to the new kinds.
ALTER TABLE work_orders ADD COLUMN overdue_notified_at TIMESTAMP WITH TIME ZONE;
-- Orders already overdue count as announced: the first run must not flood receivers with the past.
UPDATE work_orders SET overdue_notified_at = now()
WHERE status IN ('open', 'acknowledged', 'in_progress') AND due_at <= now();
ALTER TABLE webhook_endpoints DROP CONSTRAINT ck_webhook_endpoints_kinds;
ALTER TABLE webhook_endpoints ADD CONSTRAINT ck_webhook_endpoints_kinds CHECK (cardinality(kinds) > 0 AND kinds <@ ARRAY['warning', 'work_order', 'work_order_overdue', 'cell_colour', 'feature_changed', 'layer_changed', 'cell_workers', 'shelter_status']::text[]);
