-- Lock one method's thresholds for a change and read them (the change records the old values).
SELECT level, min_score, min_inclusive FROM assessment_thresholds WHERE method = %(method)s FOR UPDATE
