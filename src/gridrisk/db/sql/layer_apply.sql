-- Upsert the staged cells of layer %(layer)s by code, so codes (and what hangs off them) survive;
-- areas in the city's metric CRS (city_profile).
WITH staged AS (
    SELECT s.*, ST_Multi(ST_CollectionExtract(ST_GeomFromWKB(s.wkb, 4326), 3)) AS geom
    FROM layer_stage s
)
INSERT INTO cells AS c (layer, code, name, name_en, geom, area_m2, population, district_code, props, updated_at)
SELECT %(layer)s, code, name, name_en, geom, ST_Area(ST_Transform(geom, %(srid)s::int)),
       coalesce(population, 0), district_code, props, now()
FROM staged
ON CONFLICT (layer, code) DO UPDATE SET
    name = excluded.name,
    name_en = excluded.name_en,
    geom = excluded.geom,
    area_m2 = excluded.area_m2,
    population = excluded.population,
    district_code = coalesce(excluded.district_code, c.district_code),
    props = excluded.props,
    updated_at = now()
