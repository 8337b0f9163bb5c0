-- Remove every rule of one hazard (before its new rules are inserted).
DELETE FROM warning_rules WHERE hazard_type = %(hazard_type)s
