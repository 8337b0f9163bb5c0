-- The coverage report as one JSON text: the rule, city totals, per-district totals, then the cells
-- (worst shortfall first). The marker in `cov` is replaced by shelter_coverage.sql (one row per cell).
-- Totals: capacity is the sum of the cells' shares; shortfall is the sum of the cells' shortfalls
-- (a surplus in one cell does not seat the people of another), ratio = capacity ÷ population.
WITH cov AS MATERIALIZED (
/*coverage*/
),
classes AS (
    SELECT class, name, service_radius_m, m2_per_person, min_effective_area_m2 FROM shelter_classes
),
groups AS (
    SELECT GROUPING(district_code) = 1 AS is_city, district_code,
           sum(population) AS population, sum(capacity) AS capacity,
           sum(greatest(0, population - capacity)) AS shortfall,
           count(*) AS cells,
           count(*) FILTER (WHERE population > capacity) AS cells_short,
           count(*) FILTER (WHERE cardinality(shelter_ids) = 0) AS cells_unreached,
           coalesce(sum(population) FILTER (WHERE cardinality(shelter_ids) = 0), 0) AS population_unreached
    FROM cov
    GROUP BY GROUPING SETS ((), (district_code))
),
group_classes AS (
    SELECT GROUPING(c.district_code) = 1 AS is_city, c.district_code, e.key AS class,
           sum(e.value::float8) AS capacity
    FROM cov c CROSS JOIN jsonb_each_text(c.by_class) e
    GROUP BY GROUPING SETS ((e.key), (c.district_code, e.key))
),
serving AS (
    SELECT DISTINCT i AS id FROM cov, unnest(cov.shelter_ids) AS i WHERE cov.population > 0
),
-- Shelters located in each district (by their district_code), whatever cells they reach; idle ones
-- are not closed but reach no populated cell (their capacity is in no cell's share).
located AS (
    SELECT GROUPING(s.district_code) = 1 AS is_city, s.district_code,
           count(*) FILTER (WHERE s.status <> 'closed') AS shelters,
           coalesce(sum(s.capacity) FILTER (WHERE s.status <> 'closed'), 0) AS shelter_capacity,
           count(*) FILTER (WHERE s.status = 'closed') AS closed,
           count(*) FILTER (WHERE s.status <> 'closed' AND v.id IS NULL) AS idle,
           coalesce(sum(s.capacity) FILTER (WHERE s.status <> 'closed' AND v.id IS NULL), 0) AS idle_capacity,
           coalesce(json_agg(s.code ORDER BY s.code) FILTER (WHERE s.status <> 'closed' AND v.id IS NULL),
                    '[]'::json) AS idle_codes
    FROM shelters s
    LEFT JOIN serving v ON v.id = s.id
    GROUP BY GROUPING SETS ((), (s.district_code))
),
summaries AS (
    SELECT g.is_city, g.district_code,
           json_build_object(
               'code', g.district_code,
               'name', (SELECT d.name FROM cells d WHERE d.layer = 'district' AND d.code = g.district_code),
               'population', g.population,
               'capacity', round(g.capacity::numeric, 1),
               'ratio', CASE WHEN g.population > 0 THEN round((g.capacity / g.population)::numeric, 4) END,
               'shortfall', round(g.shortfall::numeric),
               'cells', g.cells,
               'cells_with_shortfall', g.cells_short,
               'cells_unreached', g.cells_unreached,
               'population_unreached', g.population_unreached,
               'by_class', (SELECT json_object_agg(gc.class, json_build_object(
                                'capacity', round(gc.capacity::numeric, 1),
                                'ratio', CASE WHEN g.population > 0
                                              THEN round((gc.capacity / g.population)::numeric, 4) END)
                                ORDER BY gc.class)
                            FROM group_classes gc
                            WHERE gc.is_city = g.is_city AND gc.district_code IS NOT DISTINCT FROM g.district_code),
               'shelters_located', coalesce(l.shelters, 0),
               'shelter_capacity_located', coalesce(l.shelter_capacity, 0),
               'shelters_closed', coalesce(l.closed, 0),
               'idle_shelters', coalesce(l.idle, 0),
               'idle_capacity', coalesce(l.idle_capacity, 0),
               'idle_shelter_codes', coalesce(l.idle_codes, '[]'::json)
           ) AS body
    FROM groups g
    LEFT JOIN located l ON l.is_city = g.is_city AND l.district_code IS NOT DISTINCT FROM g.district_code
)
SELECT json_build_object(
    'layer', %(layer)s::text,
    'generated_at', now(),
    'rule', 'A shelter that is not closed reaches a cell when the cell''s centroid lies within its class''s '
            'service radius (geodesic metres). Its capacity is shared among the cells it reaches in '
            'proportion to their population; a cell''s capacity is the sum of its shares, ratio = capacity '
            '÷ population, shortfall = max(0, population − capacity) persons. Totals add up the cells; '
            'idle shelters reach no populated cell, so their capacity is in no cell.',
    'classes', (SELECT json_agg(json_build_object('class', class, 'name', name,
                                                  'service_radius_m', service_radius_m,
                                                  'm2_per_person', m2_per_person) ORDER BY service_radius_m)
                FROM classes),
    'city', (SELECT s.body FROM summaries s WHERE s.is_city),
    'districts', (SELECT coalesce(json_agg(s.body ORDER BY s.district_code), '[]'::json)
                  FROM summaries s WHERE NOT s.is_city),
    'cells', CASE WHEN %(with_cells)s THEN
        (SELECT coalesce(json_agg(json_build_object(
                    'code', c.code, 'name', c.name, 'district_code', c.district_code,
                    'population', c.population,
                    'capacity', round(c.capacity::numeric, 1),
                    'ratio', CASE WHEN c.population > 0 THEN round((c.capacity / c.population)::numeric, 4) END,
                    'shortfall', round(greatest(0, c.population - c.capacity)::numeric),
                    'by_class', (SELECT json_object_agg(e.key, round(e.value::numeric, 1) ORDER BY e.key)
                                 FROM jsonb_each_text(c.by_class) e),
                    'shelters', c.shelter_ids)
                 ORDER BY greatest(0, c.population - c.capacity) DESC, c.code), '[]'::json)
         FROM cov c)
    END
)::text AS report
