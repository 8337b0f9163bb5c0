-- Who answers for each live order of warning %(warning_id)s that names nobody yet: the grid worker
-- of its comprehensive cell (网格员), and the target's responsible unit (a risk source's enterprise
-- or department), else the district's emergency management bureau.
UPDATE work_orders o
SET responsible_person = x.person, responsible_phone = x.phone, responsible_unit = x.unit
FROM (
    SELECT o.id, wk.name AS person, wk.phone,
           coalesce(CASE o.target_type
                        WHEN 'risk_source' THEN (SELECT coalesce(s.enterprise, s.department)
                                                 FROM risk_sources s WHERE s.id = o.target_id)
                        WHEN 'hazard_point' THEN (SELECT h.responsible_unit FROM hazard_points h
                                                  WHERE h.id = o.target_id)
                        WHEN 'vulnerable_site' THEN (SELECT v.responsible_unit FROM vulnerable_sites v
                                                     WHERE v.id = o.target_id)
                    END,
                    (SELECT d.name || '应急管理局' FROM cells d WHERE d.layer = 'district' AND d.code = o.district_code))
               AS unit
    FROM work_orders o
    LEFT JOIN LATERAL (
        SELECT w.name, w.phone FROM cell_workers w
        WHERE w.layer = o.layer AND w.cell_code = o.cell_code ORDER BY w.id LIMIT 1
    ) wk ON true
    WHERE o.warning_id = %(warning_id)s AND o.status IN ('open', 'acknowledged', 'in_progress')
      AND o.responsible_person IS NULL AND o.responsible_unit IS NULL
) x
WHERE o.id = x.id
