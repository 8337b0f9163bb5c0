-- Add one rule: a kind of target the hazard exposes and the action each level demands of it.
INSERT INTO warning_rules (hazard_type, target_type, target_kind, action_blue, action_yellow,
                           action_orange, action_red, updated_by)
VALUES (%(hazard_type)s, %(target_type)s, %(target_kind)s, %(blue)s, %(yellow)s, %(orange)s, %(red)s, %(by)s)
