-- The supply catalogue: every item depots may hold, with its name and unit.
SELECT item, name, unit FROM supply_items ORDER BY item
