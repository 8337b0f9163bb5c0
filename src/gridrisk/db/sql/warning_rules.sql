-- Every targeting rule: the kinds of target each hazard exposes and the action each level demands.
SELECT hazard_type, target_type, target_kind, action_blue, action_yellow, action_orange, action_red
FROM warning_rules ORDER BY hazard_type, target_type, target_kind
