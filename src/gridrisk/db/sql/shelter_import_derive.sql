-- Staged shelters without a capacity get floor(effective area ÷ the class's m² per person).
UPDATE import_stage s
SET capacity = floor(s.effective_area_m2 / k.m2_per_person + 1e-9)::int
FROM shelter_classes k
WHERE k.class = s.class AND s.capacity IS NULL
