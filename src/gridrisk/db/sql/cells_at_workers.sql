-- Every cell's workers, in the order and form cells_at.sql lists them (cells without any: none).
SELECT w.layer, w.cell_code AS code,
       json_agg(json_build_object('name', w.name, 'phone', w.phone) ORDER BY w.id)::text AS workers
FROM cell_workers w
GROUP BY w.layer, w.cell_code
