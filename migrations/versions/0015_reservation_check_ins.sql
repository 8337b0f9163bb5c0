-- 0015: evacuees checked in with their order's id use up its reserved places instead of counting twice.
ALTER TABLE shelter_reservations ADD COLUMN checked_in INTEGER DEFAULT 0 NOT NULL;
ALTER TABLE shelter_reservations ADD CONSTRAINT ck_shelter_reservations_checked_in CHECK (checked_in BETWEEN 0 AND persons);
