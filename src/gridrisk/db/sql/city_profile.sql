-- The city this database serves (one row): its names and the metric CRS areas are measured in.
SELECT name, name_en, metric_srid, metric_crs_auto, updated_at FROM city_profile
