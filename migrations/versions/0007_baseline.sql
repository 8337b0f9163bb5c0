-- The schema as migrations 0001-0007 left it: tables and indexes, frozen (their reference rows are in
-- 0007_baseline_rows.sql).
-- Functions, triggers and views are not here: they live as source in src/gridrisk/db/functions
-- and are applied after the migrations (see migrations/env.py). Constraint names are the ones
-- db/tables/ derives; errors.py may report them to clients.

CREATE EXTENSION IF NOT EXISTS postgis;

-- Keys, layers, cells and the city outline (0001).
CREATE TABLE api_keys (
    id bigserial CONSTRAINT pk_api_keys PRIMARY KEY,
    name text NOT NULL,
    role text NOT NULL CONSTRAINT ck_api_keys_role CHECK (role IN ('admin', 'operator', 'worker', 'viewer')),
    prefix text NOT NULL CONSTRAINT uq_api_keys_prefix UNIQUE,
    key_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE city_parts (id bigserial CONSTRAINT pk_city_parts PRIMARY KEY, geom geometry(Polygon, 4326) NOT NULL);
CREATE INDEX ix_city_parts_geom ON city_parts USING gist (geom);

CREATE TABLE layer_imports (
    id bigserial CONSTRAINT pk_layer_imports PRIMARY KEY,
    layer text NOT NULL,
    source text,
    ok boolean NOT NULL,
    report jsonb NOT NULL,
    cell_count integer NOT NULL DEFAULT 0,
    duration_s double precision,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE layers (
    name text CONSTRAINT pk_layers PRIMARY KEY,
    kind text NOT NULL CONSTRAINT ck_layers_kind CHECK (kind IN ('grid', 'admin')),
    title text NOT NULL,
    description text NOT NULL DEFAULT '',
    version integer NOT NULL DEFAULT 0,
    imported_at timestamptz,
    source text,
    stats jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE cells (
    id bigserial CONSTRAINT pk_cells PRIMARY KEY,
    layer text NOT NULL CONSTRAINT fk_cells_layer_layers REFERENCES layers (name) ON DELETE CASCADE,
    code text NOT NULL,
    name text NOT NULL,
    name_en text,
    geom geometry(MultiPolygon, 4326) NOT NULL,
    area_m2 double precision NOT NULL CONSTRAINT ck_cells_area CHECK (area_m2 >= 0),
    population bigint NOT NULL DEFAULT 0 CONSTRAINT ck_cells_population CHECK (population >= 0),
    district_code text,
    street_code text,
    community_code text,
    props jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_cells_layer_code UNIQUE (layer, code),
    CONSTRAINT ck_cells_geom_valid CHECK (NOT ST_IsEmpty(geom) AND ST_IsValid(geom))
);
CREATE INDEX ix_cells_geom ON cells USING gist (geom);
CREATE INDEX ix_cells_layer_district ON cells (layer, district_code);

CREATE TABLE cell_overlaps (
    layer text NOT NULL,
    code text NOT NULL,
    other_layer text NOT NULL,
    other_code text NOT NULL,
    area_m2 double precision NOT NULL,
    share double precision NOT NULL,
    other_share double precision NOT NULL,
    CONSTRAINT pk_cell_overlaps PRIMARY KEY (layer, code, other_layer, other_code),
    CONSTRAINT fk_cell_overlaps_cell FOREIGN KEY (layer, code) REFERENCES cells (layer, code) ON DELETE CASCADE,
    CONSTRAINT fk_cell_overlaps_other FOREIGN KEY (other_layer, other_code)
        REFERENCES cells (layer, code) ON DELETE CASCADE
);
CREATE INDEX ix_cell_overlaps_other ON cell_overlaps (other_layer, other_code);

CREATE TABLE cell_workers (
    id bigserial CONSTRAINT pk_cell_workers PRIMARY KEY,
    layer text NOT NULL,
    cell_code text NOT NULL,
    name text NOT NULL,
    phone text,
    api_key_id bigint CONSTRAINT fk_cell_workers_api_key_id_api_keys REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT fk_cell_workers_cell FOREIGN KEY (layer, cell_code)
        REFERENCES cells (layer, code) ON UPDATE CASCADE ON DELETE CASCADE
);
CREATE INDEX ix_cell_workers_api_key ON cell_workers (api_key_id);
CREATE INDEX ix_cell_workers_cell ON cell_workers (layer, cell_code);

CREATE TABLE cell_pieces (
    id bigserial CONSTRAINT pk_cell_pieces PRIMARY KEY,
    cell_id bigint NOT NULL CONSTRAINT fk_cell_pieces_cell_id_cells REFERENCES cells (id) ON DELETE CASCADE,
    layer text NOT NULL,
    geom geometry(Polygon, 4326) NOT NULL
);
CREATE INDEX ix_cell_pieces_geom ON cell_pieces USING gist (geom);
CREATE INDEX ix_cell_pieces_cell ON cell_pieces (cell_id);

-- Risk sources, thresholds and the four-colour map (0002).
CREATE TABLE assessment_thresholds (
    method text CONSTRAINT ck_assessment_thresholds_method CHECK (method IN ('LEC', 'LS')),
    level text CONSTRAINT ck_assessment_thresholds_level CHECK (level IN ('red', 'orange', 'yellow')),
    min_score double precision NOT NULL,
    min_inclusive boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT 'migration',
    CONSTRAINT pk_assessment_thresholds PRIMARY KEY (method, level)
);

CREATE TABLE events (
    id bigserial CONSTRAINT pk_events PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    payload jsonb NOT NULL
);

CREATE TABLE risk_categories (code text CONSTRAINT pk_risk_categories PRIMARY KEY, name text NOT NULL, name_en text NOT NULL);

CREATE TABLE threshold_changes (
    id bigserial CONSTRAINT pk_threshold_changes PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL,
    method text NOT NULL,
    old jsonb NOT NULL,
    new jsonb NOT NULL,
    reason text
);

CREATE TABLE risk_sources (
    id bigserial CONSTRAINT pk_risk_sources PRIMARY KEY,
    code text NOT NULL CONSTRAINT uq_risk_sources_code UNIQUE,
    name text NOT NULL,
    category text NOT NULL CONSTRAINT fk_risk_sources_category_risk_categories REFERENCES risk_categories (code),
    geom geometry(Geometry, 4326) NOT NULL,
    address text,
    plate_code text CONSTRAINT uq_risk_sources_plate_code UNIQUE,
    enterprise text,
    department text,
    method text NOT NULL CONSTRAINT ck_risk_sources_method CHECK (method IN ('LEC', 'LS', 'direct')),
    l double precision, e double precision, c double precision, s double precision, score double precision,
    computed_level text,
    override_level text,
    override_reason text,
    level text NOT NULL CONSTRAINT ck_risk_sources_level CHECK (level IN ('red', 'orange', 'yellow', 'blue')),
    status text NOT NULL DEFAULT 'active'
        CONSTRAINT ck_risk_sources_status CHECK (status IN ('active', 'suspended', 'closed')),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(), created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL,
    CONSTRAINT ck_risk_sources_geom
        CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom))
);
CREATE INDEX ix_risk_sources_category_level ON risk_sources (category, level);
CREATE INDEX ix_risk_sources_geom ON risk_sources USING gist (geom);

CREATE TABLE cell_colour_history (
    id bigserial CONSTRAINT pk_cell_colour_history PRIMARY KEY,
    cell_id bigint NOT NULL CONSTRAINT fk_cell_colour_history_cell_id_cells REFERENCES cells (id) ON DELETE CASCADE,
    at timestamptz NOT NULL DEFAULT now(),
    old text NOT NULL,
    new text NOT NULL,
    computed text NOT NULL,
    counts jsonb NOT NULL
);
CREATE INDEX ix_cell_colour_history_cell_at ON cell_colour_history (cell_id, at);

CREATE TABLE cell_pins (
    id bigserial CONSTRAINT pk_cell_pins PRIMARY KEY,
    cell_id bigint NOT NULL CONSTRAINT fk_cell_pins_cell_id_cells REFERENCES cells (id) ON DELETE CASCADE,
    colour text,
    reason text NOT NULL,
    by text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    action text NOT NULL
);

CREATE TABLE cell_risk (
    cell_id bigint CONSTRAINT pk_cell_risk PRIMARY KEY
        CONSTRAINT fk_cell_risk_cell_id_cells REFERENCES cells (id) ON DELETE CASCADE,
    layer text NOT NULL,
    code text NOT NULL,
    computed_colour text NOT NULL DEFAULT 'blue'
        CONSTRAINT ck_cell_risk_computed_colour CHECK (computed_colour IN ('red', 'orange', 'yellow', 'blue')),
    pinned_colour text CONSTRAINT ck_cell_risk_pinned_colour
        CHECK (pinned_colour IS NULL OR pinned_colour IN ('red', 'orange', 'yellow', 'blue')),
    pin_reason text,
    pinned_by text,
    pinned_at timestamptz,
    colour text NOT NULL DEFAULT 'blue' CONSTRAINT ck_cell_risk_colour CHECK (colour IN ('red', 'orange', 'yellow', 'blue')),
    score double precision NOT NULL DEFAULT 0,
    n_red integer NOT NULL DEFAULT 0, n_orange integer NOT NULL DEFAULT 0,
    n_yellow integer NOT NULL DEFAULT 0, n_blue integer NOT NULL DEFAULT 0,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_cell_risk_layer_colour ON cell_risk (layer, colour);

CREATE TABLE risk_source_history (
    id bigserial CONSTRAINT pk_risk_source_history PRIMARY KEY,
    source_id bigint NOT NULL
        CONSTRAINT fk_risk_source_history_source_id_risk_sources REFERENCES risk_sources (id) ON DELETE CASCADE,
    version integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL,
    op text NOT NULL,
    changes jsonb NOT NULL,
    -- What the map as it was at a past moment needs, without replaying the changes.
    level text NOT NULL,
    status text NOT NULL,
    geom geometry(Geometry, 4326) NOT NULL,
    CONSTRAINT uq_risk_source_history_source_id_version UNIQUE (source_id, version)
);
CREATE INDEX ix_risk_source_history_at ON risk_source_history (at);

CREATE TABLE source_cells (
    source_id bigint CONSTRAINT fk_source_cells_source_id_risk_sources REFERENCES risk_sources (id) ON DELETE CASCADE,
    cell_id bigint CONSTRAINT fk_source_cells_cell_id_cells REFERENCES cells (id) ON DELETE CASCADE,
    layer text NOT NULL,
    CONSTRAINT pk_source_cells PRIMARY KEY (source_id, cell_id)
);
CREATE INDEX ix_source_cells_cell ON source_cells (cell_id);

-- Hazard points and shelters (0003).
CREATE TABLE hazard_points (
    id bigserial CONSTRAINT pk_hazard_points PRIMARY KEY,
    code text NOT NULL CONSTRAINT uq_hazard_points_code UNIQUE,
    name text NOT NULL,
    kind text NOT NULL CONSTRAINT ck_hazard_points_kind CHECK (kind IN (
        'landslide', 'collapse', 'debris_flow', 'ground_subsidence', 'waterlogging', 'dangerous_building', 'other')),
    geom geometry(Geometry, 4326) NOT NULL,
    threatened_persons integer NOT NULL DEFAULT 0,
    property_value double precision NOT NULL DEFAULT 0,
    level text NOT NULL CONSTRAINT ck_hazard_points_level CHECK (level IN ('red', 'orange', 'yellow', 'blue')),
    status text NOT NULL DEFAULT 'identified' CONSTRAINT ck_hazard_points_status
        CHECK (status IN ('identified', 'monitoring', 'remediating', 'remediated', 'closed')),
    status_dates jsonb NOT NULL DEFAULT '{}'::jsonb,
    responsible_person text,
    responsible_unit text,
    notes text,
    address text,
    district_code text,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(), created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL,
    CONSTRAINT ck_hazard_points_geom
        CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)),
    CONSTRAINT ck_hazard_points_nonnegative CHECK (threatened_persons >= 0 AND property_value >= 0)
);
CREATE INDEX ix_hazard_points_geom ON hazard_points USING gist (geom);
CREATE INDEX ix_hazard_points_kind_status ON hazard_points (kind, status);

CREATE TABLE shelter_classes (
    class text CONSTRAINT pk_shelter_classes PRIMARY KEY,
    name text NOT NULL,
    service_radius_m double precision NOT NULL,
    m2_per_person double precision NOT NULL,
    min_effective_area_m2 double precision NOT NULL DEFAULT 2000,
    CONSTRAINT ck_shelter_classes_positive CHECK (service_radius_m > 0 AND m2_per_person > 0)
);

CREATE TABLE hazard_point_history (
    id bigserial CONSTRAINT pk_hazard_point_history PRIMARY KEY,
    hazard_id bigint NOT NULL
        CONSTRAINT fk_hazard_point_history_hazard_id_hazard_points REFERENCES hazard_points (id) ON DELETE CASCADE,
    version integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL,
    op text NOT NULL,
    changes jsonb NOT NULL,
    CONSTRAINT uq_hazard_point_history_hazard_id_version UNIQUE (hazard_id, version)
);

CREATE TABLE shelters (
    id bigserial CONSTRAINT pk_shelters PRIMARY KEY,
    code text NOT NULL CONSTRAINT uq_shelters_code UNIQUE,
    name text NOT NULL,
    class text NOT NULL CONSTRAINT fk_shelters_class_shelter_classes REFERENCES shelter_classes (class),
    geom geometry(Geometry, 4326) NOT NULL,
    total_area_m2 double precision,
    effective_area_m2 double precision,
    capacity integer NOT NULL,
    occupancy integer NOT NULL DEFAULT 0,
    status text NOT NULL DEFAULT 'standby'
        CONSTRAINT ck_shelters_status CHECK (status IN ('standby', 'open', 'full', 'closed')),
    facilities jsonb NOT NULL DEFAULT '[]'::jsonb,
    address text,
    district_code text,
    managing_unit text,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(), created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL,
    CONSTRAINT ck_shelters_geom
        CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)),
    CONSTRAINT ck_shelters_occupancy CHECK (capacity >= 0 AND occupancy >= 0 AND occupancy <= capacity),
    CONSTRAINT ck_shelters_areas
        CHECK (total_area_m2 IS NULL OR effective_area_m2 IS NULL OR effective_area_m2 <= total_area_m2)
);
CREATE INDEX ix_shelters_geog ON shelters USING gist ((geom::geography));
CREATE INDEX ix_shelters_geom ON shelters USING gist (geom);

CREATE TABLE hazard_cells (
    hazard_id bigint CONSTRAINT fk_hazard_cells_hazard_id_hazard_points REFERENCES hazard_points (id) ON DELETE CASCADE,
    cell_id bigint CONSTRAINT fk_hazard_cells_cell_id_cells REFERENCES cells (id) ON DELETE CASCADE,
    layer text NOT NULL,
    CONSTRAINT pk_hazard_cells PRIMARY KEY (hazard_id, cell_id)
);
CREATE INDEX ix_hazard_cells_cell ON hazard_cells (cell_id);

CREATE TABLE shelter_history (
    id bigserial CONSTRAINT pk_shelter_history PRIMARY KEY,
    shelter_id bigint NOT NULL
        CONSTRAINT fk_shelter_history_shelter_id_shelters REFERENCES shelters (id) ON DELETE CASCADE,
    version integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL,
    op text NOT NULL,
    changes jsonb NOT NULL,
    CONSTRAINT uq_shelter_history_shelter_id_version UNIQUE (shelter_id, version)
);

-- Targeted warnings and work orders (0006).
CREATE TABLE warning_due_times (
    level text CONSTRAINT pk_warning_due_times PRIMARY KEY
        CONSTRAINT ck_warning_due_times_level CHECK (level IN ('red', 'orange', 'yellow', 'blue')),
    due_minutes integer NOT NULL CONSTRAINT ck_warning_due_times_due_minutes CHECK (due_minutes > 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT 'migration'
);

CREATE TABLE warning_rule_changes (
    id bigserial CONSTRAINT pk_warning_rule_changes PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL,
    subject text NOT NULL,
    old jsonb NOT NULL,
    new jsonb NOT NULL,
    reason text
);

CREATE TABLE warning_rules (
    hazard_type text CONSTRAINT ck_warning_rules_hazard_type CHECK (hazard_type IN ('rainstorm', 'typhoon', 'gale',
        'thunderstorm', 'heat', 'cold_wave', 'snow', 'fog', 'hail', 'flood', 'geological', 'earthquake', 'other')),
    target_type text CONSTRAINT ck_warning_rules_target_type CHECK (target_type IN ('risk_source', 'hazard_point')),
    target_kind text,
    action_blue text NOT NULL,
    action_yellow text NOT NULL,
    action_orange text NOT NULL,
    action_red text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT 'migration',
    CONSTRAINT pk_warning_rules PRIMARY KEY (hazard_type, target_type, target_kind),
    CONSTRAINT ck_warning_rules_actions CHECK (
        action_blue IN ('none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate')
        AND action_yellow IN ('none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate')
        AND action_orange IN ('none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate')
        AND action_red IN ('none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate'))
);

CREATE TABLE warnings (
    id bigserial CONSTRAINT pk_warnings PRIMARY KEY,
    identifier text NOT NULL CONSTRAINT uq_warnings_identifier UNIQUE,
    sender text,
    sent timestamptz NOT NULL,
    last_message text NOT NULL,
    hazard_type text NOT NULL CONSTRAINT ck_warnings_hazard_type CHECK (hazard_type IN ('rainstorm', 'typhoon', 'gale',
        'thunderstorm', 'heat', 'cold_wave', 'snow', 'fog', 'hail', 'flood', 'geological', 'earthquake', 'other')),
    level text NOT NULL CONSTRAINT ck_warnings_level CHECK (level IN ('red', 'orange', 'yellow', 'blue')),
    status text NOT NULL DEFAULT 'active' CONSTRAINT ck_warnings_status CHECK (status IN ('active', 'cancelled')),
    valid_from timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    headline text NOT NULL,
    description text NOT NULL DEFAULT '',
    instruction text,
    area geometry(MultiPolygon, 4326) NOT NULL CONSTRAINT ck_warnings_area CHECK (NOT ST_IsEmpty(area) AND ST_IsValid(area)),
    area_spec jsonb NOT NULL,
    affected_cells jsonb NOT NULL DEFAULT '{}'::jsonb,
    source text NOT NULL CONSTRAINT ck_warnings_source CHECK (source IN ('json', 'cap')),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(), created_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL,
    cancelled_at timestamptz,
    cancel_reason text,
    CONSTRAINT ck_warnings_validity CHECK (valid_until > valid_from)
);
CREATE INDEX ix_warnings_area ON warnings USING gist (area);
CREATE INDEX ix_warnings_status_valid_until ON warnings (status, valid_until);

CREATE TABLE warning_history (
    id bigserial CONSTRAINT pk_warning_history PRIMARY KEY,
    warning_id bigint NOT NULL CONSTRAINT fk_warning_history_warning_id_warnings REFERENCES warnings (id) ON DELETE CASCADE,
    version integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL,
    op text NOT NULL,
    message text,
    changes jsonb NOT NULL,
    orders jsonb NOT NULL
);
CREATE INDEX ix_warning_history_warning ON warning_history (warning_id, id);

CREATE TABLE warning_messages (
    identifier text CONSTRAINT pk_warning_messages PRIMARY KEY,
    warning_id bigint NOT NULL CONSTRAINT fk_warning_messages_warning_id_warnings REFERENCES warnings (id) ON DELETE CASCADE,
    msg_type text NOT NULL CONSTRAINT ck_warning_messages_msg_type CHECK (msg_type IN ('Alert', 'Update', 'Cancel')),
    sent timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL
);
CREATE INDEX ix_warning_messages_warning ON warning_messages (warning_id);

CREATE TABLE work_orders (
    id bigserial CONSTRAINT pk_work_orders PRIMARY KEY,
    warning_id bigint NOT NULL CONSTRAINT fk_work_orders_warning_id_warnings REFERENCES warnings (id) ON DELETE CASCADE,
    target_type text NOT NULL CONSTRAINT ck_work_orders_target_type CHECK (target_type IN ('risk_source', 'hazard_point')),
    target_id bigint NOT NULL,
    target_kind text NOT NULL,
    target_code text NOT NULL,
    target_name text NOT NULL,
    geom geometry(Point, 4326) NOT NULL,
    layer text NOT NULL DEFAULT 'comprehensive',
    cell_code text,
    district_code text,
    action text NOT NULL CONSTRAINT ck_work_orders_action
        CHECK (action IN ('notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate')),
    level text NOT NULL CONSTRAINT ck_work_orders_level CHECK (level IN ('red', 'orange', 'yellow', 'blue')),
    threatened_persons integer NOT NULL DEFAULT 0 CONSTRAINT ck_work_orders_persons CHECK (threatened_persons >= 0),
    shelter_id bigint CONSTRAINT fk_work_orders_shelter_id_shelters REFERENCES shelters (id) ON DELETE SET NULL,
    shelter_distance_m double precision,
    shelter_note text,
    status text NOT NULL DEFAULT 'open' CONSTRAINT ck_work_orders_status
        CHECK (status IN ('open', 'acknowledged', 'in_progress', 'done', 'cancelled')),
    due_at timestamptz NOT NULL,
    acknowledged_at timestamptz,
    done_at timestamptz,
    done_by text,
    done_note text,
    photo_url text,
    done_location geometry(Point, 4326),
    done_distance_m double precision,
    cancelled_at timestamptz,
    cancel_cause text CONSTRAINT ck_work_orders_cancel_cause
        CHECK (cancel_cause IS NULL OR cancel_cause IN ('not_targeted', 'warning_cancelled', 'manual')),
    cancel_reason text,
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(), updated_by text NOT NULL,
    CONSTRAINT uq_work_orders_warning_id_target_type_target_id UNIQUE (warning_id, target_type, target_id),
    CONSTRAINT ck_work_orders_done_note CHECK (status <> 'done' OR done_note IS NOT NULL)
);
CREATE INDEX ix_work_orders_cell ON work_orders (layer, cell_code, status);
CREATE INDEX ix_work_orders_status_due ON work_orders (status, due_at);
CREATE INDEX ix_work_orders_warning_status ON work_orders (warning_id, status);

CREATE TABLE work_order_history (
    id bigserial CONSTRAINT pk_work_order_history PRIMARY KEY,
    order_id bigint NOT NULL
        CONSTRAINT fk_work_order_history_order_id_work_orders REFERENCES work_orders (id) ON DELETE CASCADE,
    version integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    by text NOT NULL,
    op text NOT NULL,
    from_status text,
    to_status text NOT NULL,
    action text NOT NULL,
    note text,
    photo_url text,
    location geometry(Point, 4326),
    distance_m double precision
);
CREATE INDEX ix_work_order_history_order ON work_order_history (order_id, id);

