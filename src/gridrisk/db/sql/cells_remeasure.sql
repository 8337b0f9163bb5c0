-- Every cell's area again, in the city's new metric CRS.
UPDATE cells SET area_m2 = ST_Area(ST_Transform(geom, %(srid)s::int))
