-- Set the threshold of one method's level.
UPDATE assessment_thresholds
SET min_score = %(min_score)s, min_inclusive = %(min_inclusive)s, updated_at = now(), updated_by = %(by)s
WHERE method = %(method)s AND level = %(level)s
