-- The cell a work order belongs to (no row when there is no such order).
SELECT layer, cell_code FROM work_orders WHERE id = %(id)s
