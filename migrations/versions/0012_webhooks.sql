-- 0012: webhook endpoints and their deliveries.
CREATE TABLE webhook_endpoints (
    id BIGSERIAL NOT NULL,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    kinds TEXT[] NOT NULL,
    description TEXT,
    enabled BOOLEAN DEFAULT true NOT NULL,
    disabled_reason TEXT,
    lease_until TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    CONSTRAINT pk_webhook_endpoints PRIMARY KEY (id),
    CONSTRAINT ck_webhook_endpoints_url CHECK (url ~ '^https?://'),
    CONSTRAINT ck_webhook_endpoints_kinds CHECK (cardinality(kinds) > 0 AND kinds <@ ARRAY['warning', 'work_order', 'cell_colour', 'feature_changed', 'layer_changed', 'cell_workers']::text[])
);
CREATE TABLE webhook_deliveries (
    id BIGSERIAL NOT NULL,
    endpoint_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    payload JSONB NOT NULL,
    event_at TIMESTAMP WITH TIME ZONE NOT NULL,
    status TEXT DEFAULT 'pending' NOT NULL,
    attempts INTEGER DEFAULT 0 NOT NULL,
    next_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    delivered_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_webhook_deliveries PRIMARY KEY (id),
    CONSTRAINT ck_webhook_deliveries_status CHECK (status IN ('pending', 'delivered', 'failed', 'disabled')),
    CONSTRAINT uq_webhook_deliveries_endpoint_id_event_id UNIQUE (endpoint_id, event_id),
    CONSTRAINT fk_webhook_deliveries_endpoint_id_webhook_endpoints FOREIGN KEY(endpoint_id) REFERENCES webhook_endpoints (id) ON DELETE CASCADE
);
CREATE INDEX ix_webhook_deliveries_pending ON webhook_deliveries (endpoint_id, id) WHERE status = 'pending';
