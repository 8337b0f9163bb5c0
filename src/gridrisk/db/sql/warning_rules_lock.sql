-- Lock one hazard's rules for a replacement and read them (the change records the old values).
SELECT target_type, target_kind, action_blue, action_yellow, action_orange, action_red
FROM warning_rules WHERE hazard_type = %(hazard_type)s ORDER BY target_type, target_kind FOR UPDATE
