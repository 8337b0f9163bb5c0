-- Staging table for one layer write; dropped at commit.
CREATE TEMP TABLE layer_stage (
    code text PRIMARY KEY,
    name text NOT NULL,
    name_en text,
    population bigint,
    district_code text,
    props jsonb NOT NULL DEFAULT '{}'::jsonb,
    wkb bytea NOT NULL
) ON COMMIT DROP
