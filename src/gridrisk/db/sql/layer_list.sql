-- Every layer with its live cell count and area, and the import-time gap/overlap figures.
SELECT l.name, l.kind, l.title, l.description, l.version, l.imported_at, l.source, l.stats,
       coalesce(s.cells, 0) AS cell_count, coalesce(s.area_m2, 0) AS area_m2,
       coalesce(s.population, 0) AS population, s.bbox
FROM layers l
LEFT JOIN (
    SELECT layer, count(*) AS cells, sum(area_m2) AS area_m2, sum(population)::bigint AS population,
           ST_Extent(geom) AS bbox
    FROM cells GROUP BY layer
) s ON s.layer = l.name
ORDER BY l.kind DESC, l.name
