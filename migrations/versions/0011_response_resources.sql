-- 0011: vulnerable sites, rescue teams, supply depots, what warnings need of them, and the bookings.
CREATE TABLE vulnerable_sites (
    id BIGSERIAL NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    geom geometry(GEOMETRY,4326) NOT NULL,
    persons INTEGER DEFAULT 0 NOT NULL,
    persons_assisted INTEGER DEFAULT 0 NOT NULL,
    contact_person TEXT,
    contact_phone TEXT,
    responsible_unit TEXT,
    address TEXT,
    district_code TEXT,
    status TEXT DEFAULT 'active' NOT NULL,
    version INTEGER DEFAULT 1 NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT pk_vulnerable_sites PRIMARY KEY (id),
    CONSTRAINT ck_vulnerable_sites_kind CHECK (kind IN ('school', 'kindergarten', 'hospital', 'nursing_home', 'underground_space', 'underground_garage', 'underpass', 'tunnel', 'construction_site', 'low_lying_block', 'crowded_venue', 'other')),
    CONSTRAINT ck_vulnerable_sites_status CHECK (status IN ('active', 'closed')),
    CONSTRAINT ck_vulnerable_sites_persons CHECK (persons >= 0 AND persons_assisted >= 0 AND persons_assisted <= persons),
    CONSTRAINT ck_vulnerable_sites_geom CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)),
    CONSTRAINT uq_vulnerable_sites_code UNIQUE (code)
);
CREATE INDEX ix_vulnerable_sites_geom ON vulnerable_sites USING gist (geom);
CREATE INDEX ix_vulnerable_sites_kind ON vulnerable_sites (kind);

CREATE TABLE vulnerable_site_history (
    id BIGSERIAL NOT NULL,
    vulnerable_site_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    by TEXT NOT NULL,
    op TEXT NOT NULL,
    changes JSONB NOT NULL,
    CONSTRAINT pk_vulnerable_site_history PRIMARY KEY (id),
    CONSTRAINT uq_vulnerable_site_history_vulnerable_site_id_version UNIQUE (vulnerable_site_id, version),
    CONSTRAINT fk_vulnerable_site_history_vulnerable_site_id_vulnerable_sites FOREIGN KEY(vulnerable_site_id) REFERENCES vulnerable_sites (id) ON DELETE CASCADE
);

CREATE TABLE rescue_teams (
    id BIGSERIAL NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    team_type TEXT NOT NULL,
    sector TEXT NOT NULL,
    capabilities TEXT[] NOT NULL,
    members INTEGER DEFAULT 0 NOT NULL,
    equipment JSONB DEFAULT '[]'::jsonb NOT NULL,
    geom geometry(GEOMETRY,4326) NOT NULL,
    status TEXT DEFAULT 'available' NOT NULL,
    contact_person TEXT,
    contact_phone TEXT,
    managing_unit TEXT,
    address TEXT,
    district_code TEXT,
    version INTEGER DEFAULT 1 NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT pk_rescue_teams PRIMARY KEY (id),
    CONSTRAINT ck_rescue_teams_team_type CHECK (team_type IN ('fire_station', 'fire_brigade', 'professional', 'social', 'militia')),
    CONSTRAINT ck_rescue_teams_status CHECK (status IN ('available', 'off_duty', 'closed')),
    CONSTRAINT ck_rescue_teams_capabilities CHECK (cardinality(capabilities) > 0 AND capabilities <@ ARRAY['water_rescue', 'pumping', 'hazmat', 'structural_collapse', 'medical', 'power_restoration', 'firefighting', 'search_rescue', 'evacuation_transport', 'gas_repair', 'water_repair', 'tree_clearing', 'communications']::text[]),
    CONSTRAINT ck_rescue_teams_members CHECK (members >= 0),
    CONSTRAINT ck_rescue_teams_geom CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)),
    CONSTRAINT uq_rescue_teams_code UNIQUE (code)
);
CREATE INDEX ix_rescue_teams_capabilities ON rescue_teams USING gin (capabilities);
CREATE INDEX ix_rescue_teams_geog ON rescue_teams USING gist ((geom::geography));
CREATE INDEX ix_rescue_teams_geom ON rescue_teams USING gist (geom);

CREATE TABLE rescue_team_history (
    id BIGSERIAL NOT NULL,
    rescue_team_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    by TEXT NOT NULL,
    op TEXT NOT NULL,
    changes JSONB NOT NULL,
    CONSTRAINT pk_rescue_team_history PRIMARY KEY (id),
    CONSTRAINT uq_rescue_team_history_rescue_team_id_version UNIQUE (rescue_team_id, version),
    CONSTRAINT fk_rescue_team_history_rescue_team_id_rescue_teams FOREIGN KEY(rescue_team_id) REFERENCES rescue_teams (id) ON DELETE CASCADE
);

CREATE TABLE supply_items (
    item TEXT NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    CONSTRAINT pk_supply_items PRIMARY KEY (item)
);

CREATE TABLE supply_depots (
    id BIGSERIAL NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    level TEXT NOT NULL,
    geom geometry(GEOMETRY,4326) NOT NULL,
    area_m2 FLOAT,
    stock JSONB DEFAULT '{}'::jsonb NOT NULL,
    contact_person TEXT,
    contact_phone TEXT,
    managing_unit TEXT,
    address TEXT,
    district_code TEXT,
    status TEXT DEFAULT 'active' NOT NULL,
    version INTEGER DEFAULT 1 NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT pk_supply_depots PRIMARY KEY (id),
    CONSTRAINT ck_supply_depots_level CHECK (level IN ('city', 'district', 'street')),
    CONSTRAINT ck_supply_depots_status CHECK (status IN ('active', 'closed')),
    CONSTRAINT ck_supply_depots_area CHECK (area_m2 IS NULL OR area_m2 >= 0),
    CONSTRAINT ck_supply_depots_stock CHECK (jsonb_typeof(stock) = 'object' AND NOT jsonb_path_exists(stock, '$.* ? (@.type() != "number" || @ < 0 || @ != @.floor())')),
    CONSTRAINT ck_supply_depots_geom CHECK (GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON') AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)),
    CONSTRAINT uq_supply_depots_code UNIQUE (code)
);
CREATE INDEX ix_supply_depots_geom ON supply_depots USING gist (geom);

CREATE TABLE supply_depot_history (
    id BIGSERIAL NOT NULL,
    supply_depot_id BIGINT NOT NULL,
    version INTEGER NOT NULL,
    at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    by TEXT NOT NULL,
    op TEXT NOT NULL,
    changes JSONB NOT NULL,
    CONSTRAINT pk_supply_depot_history PRIMARY KEY (id),
    CONSTRAINT uq_supply_depot_history_supply_depot_id_version UNIQUE (supply_depot_id, version),
    CONSTRAINT fk_supply_depot_history_supply_depot_id_supply_depots FOREIGN KEY(supply_depot_id) REFERENCES supply_depots (id) ON DELETE CASCADE
);

CREATE TABLE warning_rule_needs (
    id BIGSERIAL NOT NULL,
    hazard_type TEXT NOT NULL,
    target_type TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    min_action TEXT NOT NULL,
    capability TEXT,
    item TEXT,
    per_target FLOAT DEFAULT 0 NOT NULL,
    per_person FLOAT DEFAULT 0 NOT NULL,
    CONSTRAINT pk_warning_rule_needs PRIMARY KEY (id),
    CONSTRAINT ck_warning_rule_needs_hazard_type CHECK (hazard_type = '*' OR hazard_type IN ('rainstorm', 'typhoon', 'gale', 'thunderstorm', 'heat', 'cold_wave', 'snow', 'fog', 'hail', 'flood', 'geological', 'earthquake', 'other')),
    CONSTRAINT ck_warning_rule_needs_target_type CHECK (target_type = '*' OR target_type IN ('risk_source', 'hazard_point', 'vulnerable_site')),
    CONSTRAINT ck_warning_rule_needs_min_action CHECK (min_action IN ('notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate')),
    CONSTRAINT ck_warning_rule_needs_capability CHECK (capability IS NULL OR capability IN ('water_rescue', 'pumping', 'hazmat', 'structural_collapse', 'medical', 'power_restoration', 'firefighting', 'search_rescue', 'evacuation_transport', 'gas_repair', 'water_repair', 'tree_clearing', 'communications')),
    CONSTRAINT ck_warning_rule_needs_one_need CHECK ((capability IS NULL) <> (item IS NULL)),
    CONSTRAINT ck_warning_rule_needs_amounts CHECK (per_target >= 0 AND per_person >= 0),
    CONSTRAINT fk_warning_rule_needs_item_supply_items FOREIGN KEY(item) REFERENCES supply_items (item)
);

CREATE TABLE work_order_teams (
    id BIGSERIAL NOT NULL,
    order_id BIGINT NOT NULL,
    team_id BIGINT NOT NULL,
    capability TEXT NOT NULL,
    distance_m FLOAT NOT NULL,
    booked_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    released_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_work_order_teams PRIMARY KEY (id),
    CONSTRAINT fk_work_order_teams_order_id_work_orders FOREIGN KEY(order_id) REFERENCES work_orders (id) ON DELETE CASCADE,
    CONSTRAINT fk_work_order_teams_team_id_rescue_teams FOREIGN KEY(team_id) REFERENCES rescue_teams (id)
);
CREATE INDEX ix_work_order_teams_order ON work_order_teams (order_id);
CREATE UNIQUE INDEX ux_work_order_teams_busy ON work_order_teams (team_id) WHERE released_at IS NULL;

CREATE TABLE shelter_reservations (
    id BIGSERIAL NOT NULL,
    order_id BIGINT NOT NULL,
    shelter_id BIGINT NOT NULL,
    persons INTEGER NOT NULL,
    distance_m FLOAT NOT NULL,
    booked_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    released_at TIMESTAMP WITH TIME ZONE,
    CONSTRAINT pk_shelter_reservations PRIMARY KEY (id),
    CONSTRAINT ck_shelter_reservations_persons CHECK (persons > 0),
    CONSTRAINT fk_shelter_reservations_order_id_work_orders FOREIGN KEY(order_id) REFERENCES work_orders (id) ON DELETE CASCADE,
    CONSTRAINT fk_shelter_reservations_shelter_id_shelters FOREIGN KEY(shelter_id) REFERENCES shelters (id)
);
CREATE INDEX ix_shelter_reservations_live ON shelter_reservations (shelter_id) WHERE released_at IS NULL;
CREATE INDEX ix_shelter_reservations_order ON shelter_reservations (order_id);

CREATE TABLE supply_reservations (
    id BIGSERIAL NOT NULL,
    order_id BIGINT NOT NULL,
    depot_id BIGINT NOT NULL,
    item TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    distance_m FLOAT NOT NULL,
    booked_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    released_at TIMESTAMP WITH TIME ZONE,
    consumed INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT pk_supply_reservations PRIMARY KEY (id),
    CONSTRAINT ck_supply_reservations_quantity CHECK (quantity > 0 AND consumed >= 0 AND consumed <= quantity),
    CONSTRAINT fk_supply_reservations_order_id_work_orders FOREIGN KEY(order_id) REFERENCES work_orders (id) ON DELETE CASCADE,
    CONSTRAINT fk_supply_reservations_depot_id_supply_depots FOREIGN KEY(depot_id) REFERENCES supply_depots (id),
    CONSTRAINT fk_supply_reservations_item_supply_items FOREIGN KEY(item) REFERENCES supply_items (item)
);
CREATE INDEX ix_supply_reservations_live ON supply_reservations (depot_id, item) WHERE released_at IS NULL;
CREATE INDEX ix_supply_reservations_order ON supply_reservations (order_id);

ALTER TABLE work_orders ADD COLUMN responsible_person text, ADD COLUMN responsible_phone text,
    ADD COLUMN responsible_unit text, ADD COLUMN match_notes jsonb DEFAULT '[]'::jsonb NOT NULL;
ALTER TABLE work_orders DROP CONSTRAINT ck_work_orders_target_type,
    ADD CONSTRAINT ck_work_orders_target_type
    CHECK (target_type IN ('risk_source', 'hazard_point', 'vulnerable_site'));
ALTER TABLE work_orders DROP CONSTRAINT ck_work_orders_cancel_cause,
    ADD CONSTRAINT ck_work_orders_cancel_cause
    CHECK (cancel_cause IS NULL OR cancel_cause IN ('not_targeted', 'warning_cancelled', 'manual', 'expired'));
ALTER TABLE warning_rules DROP CONSTRAINT ck_warning_rules_target_type,
    ADD CONSTRAINT ck_warning_rules_target_type
    CHECK (target_type IN ('risk_source', 'hazard_point', 'vulnerable_site'));
