-- A shelter's live state, to say why a check-in was refused.
SELECT status, occupancy, capacity FROM shelters WHERE id = %(id)s
