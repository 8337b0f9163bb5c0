-- A warning's picture: its area and bounds, headline and level, and its orders (point, status).
SELECT w.headline, w.level, ST_AsBinary(w.area) AS area,
       ST_XMin(w.area) AS minx, ST_YMin(w.area) AS miny, ST_XMax(w.area) AS maxx, ST_YMax(w.area) AS maxy,
       (SELECT coalesce(array_agg(ST_X(o.geom) ORDER BY o.id), '{}') FROM work_orders o WHERE o.warning_id = w.id)
           AS xs,
       (SELECT coalesce(array_agg(ST_Y(o.geom) ORDER BY o.id), '{}') FROM work_orders o WHERE o.warning_id = w.id)
           AS ys,
       (SELECT coalesce(array_agg(o.status ORDER BY o.id), '{}') FROM work_orders o WHERE o.warning_id = w.id)
           AS statuses,
       (SELECT name FROM city_profile) AS city
FROM warnings w WHERE w.id = %(warning_id)s
