-- Record a change of the targeting rules: who, what (due_times or rules:HAZARD), old and new (JSON), why.
INSERT INTO warning_rule_changes (by, subject, old, new, reason)
VALUES (%(by)s, %(subject)s, %(old)s, %(new)s, %(reason)s)
