-- Record a change of one method's thresholds: who, the old and new values (JSON) and why.
INSERT INTO threshold_changes (by, method, old, new, reason)
VALUES (%(by)s, %(method)s, %(old)s, %(new)s, %(reason)s)
