-- Staged shelters that would strand people already checked in: (row, field, problem, value).
SELECT s.row_no, 'capacity',
       format('The shelter holds %%s people now; the capacity cannot be lower.', r.occupancy),
       s.capacity::text
FROM import_stage s JOIN shelters r ON r.code = s.code
WHERE s.capacity < r.occupancy
UNION ALL
SELECT s.row_no, 'status', format('The shelter holds %%s people now; check them out before it goes %%s.',
                                  r.occupancy, s.status), s.status
FROM import_stage s JOIN shelters r ON r.code = s.code
WHERE s.status IN ('standby', 'closed') AND r.occupancy > 0
ORDER BY 1
