-- 0014: the people usually on a risk source's site, whom an evacuation order moves.
ALTER TABLE risk_sources ADD COLUMN persons INTEGER DEFAULT 0 NOT NULL;
ALTER TABLE risk_sources ADD CONSTRAINT ck_risk_sources_persons CHECK (persons >= 0);
