-- What the database computes into a row before it is stored, so that no writer (API, bulk import,
-- plain SQL) can store a row without it: a risk source's score and level, from its assessment and
-- the current thresholds, and the date each hazard-point status was entered.

-- The level a score reaches under the current thresholds (highest satisfied; blue is the floor).
CREATE OR REPLACE FUNCTION assess_level(p_method text, p_score double precision) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT coalesce((
        SELECT t.level FROM assessment_thresholds t
        WHERE t.method = p_method
          AND (p_score > t.min_score OR (t.min_inclusive AND p_score = t.min_score))
        ORDER BY t.min_score DESC
        LIMIT 1), 'blue')
$$;

-- Score and level are always computed here, never taken from the client. LEC: D = L x E x C;
-- risk matrix (LS): R = L x S; a direct assessment carries only the level its department set.
CREATE OR REPLACE FUNCTION risk_sources_assess() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.method = 'LEC' THEN
        NEW.score := NEW.l * NEW.e * NEW.c;
        NEW.s := NULL;
    ELSIF NEW.method = 'LS' THEN
        NEW.score := NEW.l * NEW.s;
        NEW.e := NULL; NEW.c := NULL;
    ELSE
        NEW.score := NULL; NEW.l := NULL; NEW.e := NULL; NEW.c := NULL; NEW.s := NULL;
    END IF;
    NEW.computed_level := CASE WHEN NEW.method IN ('LEC', 'LS') THEN assess_level(NEW.method, NEW.score) END;
    NEW.level := coalesce(NEW.override_level, NEW.computed_level);
    IF NEW.level IS NULL THEN
        RAISE EXCEPTION 'a direct assessment needs a level' USING ERRCODE = 'check_violation',
            CONSTRAINT = 'ck_risk_sources_level';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER risk_sources_assess BEFORE INSERT OR UPDATE ON risk_sources
FOR EACH ROW EXECUTE FUNCTION risk_sources_assess();

-- The date each status was entered, kept by the database so no path can forget it.
CREATE OR REPLACE FUNCTION hazard_points_status_dates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status THEN
        NEW.status_dates := coalesce(NEW.status_dates, '{}'::jsonb)
            || jsonb_build_object(NEW.status, to_jsonb(clock_timestamp()));
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER hazard_points_status_dates BEFORE INSERT OR UPDATE ON hazard_points
FOR EACH ROW EXECUTE FUNCTION hazard_points_status_dates();
