-- The tables whose items colour the map (recolour.sql): a feature_changed event of one of them may
-- change the counts of the cells its boxes meet.
SELECT items FROM map_item_tables()
