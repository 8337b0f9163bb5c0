-- The city profile as the API's JSON: names, the metric CRS, and the outline's bounds and centre.
SELECT p.name, p.name_en, 'EPSG:' || p.metric_srid AS metric_crs, p.metric_crs_auto,
       (SELECT count(*) FROM cells WHERE layer = 'district')::int AS districts,
       CASE WHEN e.b IS NOT NULL THEN
           ARRAY[ST_XMin(e.b), ST_YMin(e.b), ST_XMax(e.b), ST_YMax(e.b)] END AS bbox,
       CASE WHEN e.b IS NOT NULL THEN
           ARRAY[(ST_XMin(e.b) + ST_XMax(e.b)) / 2, (ST_YMin(e.b) + ST_YMax(e.b)) / 2] END AS centre
FROM city_profile p
CROSS JOIN (SELECT ST_Extent(geom)::box2d AS b FROM city_parts) e
