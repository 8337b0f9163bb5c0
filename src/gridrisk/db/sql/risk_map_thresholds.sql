-- The assessment thresholds in force: one row per method and level, highest level first.
SELECT method, level, min_score, min_inclusive, updated_at, updated_by
FROM assessment_thresholds ORDER BY method, min_score DESC
