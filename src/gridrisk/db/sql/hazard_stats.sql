-- Hazard-point counts for the city and per district, as one JSON document (city first).
-- Every kind, status and level appears, with 0 where there is none. The remediation rate is
-- remediated ÷ (total − closed): a closed point was written off or registered by mistake, and
-- counts neither as remediated nor as still to do. %(district)s narrows the district list only.
WITH dims(dim, val) AS (
    VALUES ('kind', 'landslide'), ('kind', 'collapse'), ('kind', 'debris_flow'),
           ('kind', 'ground_subsidence'), ('kind', 'waterlogging'), ('kind', 'dangerous_building'),
           ('kind', 'other'),
           ('status', 'identified'), ('status', 'monitoring'), ('status', 'remediating'),
           ('status', 'remediated'), ('status', 'closed'),
           ('level', 'red'), ('level', 'orange'), ('level', 'yellow'), ('level', 'blue'),
           ('open_level', 'red'), ('open_level', 'orange'), ('open_level', 'yellow'), ('open_level', 'blue')
),
scopes AS (
    SELECT 0 AS ord, true AS is_city, NULL::text AS code, (SELECT name FROM city_profile) AS name
    UNION ALL
    SELECT 1, false, d.code, d.name FROM cells d
    WHERE d.layer = 'district' AND (%(district)s::text IS NULL OR d.code = %(district)s)
    UNION ALL
    -- Points in no district (outside every district cell) get their own line, never vanish.
    SELECT 2, false, NULL, NULL
    WHERE %(district)s::text IS NULL AND EXISTS (SELECT 1 FROM hazard_points WHERE district_code IS NULL)
),
per_value AS (
    SELECT GROUPING(h.district_code) = 1 AS is_city, h.district_code, v.dim, v.val, count(*) AS n
    FROM hazard_points h
    CROSS JOIN LATERAL (VALUES ('kind', h.kind), ('status', h.status), ('level', h.level),
                               ('open_level', CASE WHEN h.status NOT IN ('remediated', 'closed')
                                                   THEN h.level END)) v(dim, val)
    WHERE v.val IS NOT NULL
    GROUP BY GROUPING SETS ((h.district_code, v.dim, v.val), (v.dim, v.val))
),
totals AS (
    SELECT GROUPING(district_code) = 1 AS is_city, district_code,
           count(*) AS total,
           count(*) FILTER (WHERE status NOT IN ('remediated', 'closed')) AS open,
           count(*) FILTER (WHERE status = 'remediated') AS remediated,
           count(*) FILTER (WHERE status = 'closed') AS closed,
           coalesce(sum(threatened_persons) FILTER (WHERE status NOT IN ('remediated', 'closed')), 0)
               AS persons_open,
           round(coalesce(sum(property_value) FILTER (WHERE status NOT IN ('remediated', 'closed')), 0)
                 ::numeric, 2) AS value_open
    FROM hazard_points
    GROUP BY GROUPING SETS ((district_code), ())
),
rows AS (
    SELECT s.ord, s.code,
           json_build_object(
               'code', s.code, 'name', s.name,
               'total', coalesce(t.total, 0), 'open', coalesce(t.open, 0),
               'remediated', coalesce(t.remediated, 0), 'closed', coalesce(t.closed, 0),
               'remediation_rate', round(t.remediated::numeric / nullif(t.total - t.closed, 0), 4),
               'threatened_persons_open', coalesce(t.persons_open, 0),
               'property_value_open', coalesce(t.value_open, 0),
               'by_kind', (SELECT json_object_agg(d.val, coalesce(pv.n, 0)) FROM dims d
                           LEFT JOIN per_value pv ON pv.dim = d.dim AND pv.val = d.val
                                AND pv.is_city = s.is_city AND pv.district_code IS NOT DISTINCT FROM s.code
                           WHERE d.dim = 'kind'),
               'by_status', (SELECT json_object_agg(d.val, coalesce(pv.n, 0)) FROM dims d
                             LEFT JOIN per_value pv ON pv.dim = d.dim AND pv.val = d.val
                                  AND pv.is_city = s.is_city AND pv.district_code IS NOT DISTINCT FROM s.code
                             WHERE d.dim = 'status'),
               'by_level', (SELECT json_object_agg(d.val, coalesce(pv.n, 0)) FROM dims d
                            LEFT JOIN per_value pv ON pv.dim = d.dim AND pv.val = d.val
                                 AND pv.is_city = s.is_city AND pv.district_code IS NOT DISTINCT FROM s.code
                            WHERE d.dim = 'level'),
               'open_by_level', (SELECT json_object_agg(d.val, coalesce(pv.n, 0)) FROM dims d
                                 LEFT JOIN per_value pv ON pv.dim = d.dim AND pv.val = d.val
                                      AND pv.is_city = s.is_city
                                      AND pv.district_code IS NOT DISTINCT FROM s.code
                                 WHERE d.dim = 'open_level')
           ) AS doc
    FROM scopes s
    LEFT JOIN totals t ON t.is_city = s.is_city AND t.district_code IS NOT DISTINCT FROM s.code
)
SELECT json_build_object(
           'rate_definition', 'remediated ÷ (total − closed); closed points are left out of both',
           'city', (SELECT doc FROM rows WHERE ord = 0),
           'districts', coalesce((SELECT json_agg(doc ORDER BY ord, code) FROM rows WHERE ord > 0), '[]'::json)
       )::text AS stats
