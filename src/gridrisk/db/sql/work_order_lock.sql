-- Lock one work order for a transition and read what the transition checks: status, version, cell.
SELECT id, status, version, layer, cell_code FROM work_orders WHERE id = %(id)s FOR UPDATE
