-- Change the city profile; the caller re-measures the stored areas when the metric CRS changed.
UPDATE city_profile
SET name = %(name)s, name_en = %(name_en)s, metric_srid = %(srid)s, metric_crs_auto = %(auto)s,
    updated_at = now()
