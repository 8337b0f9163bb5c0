-- The ids of a registry's features matching the filters (one page, by id), and how many match in all.
-- The braced names (table, alias, the conditions) are filled from the kind's description (registry/);
-- every value is a bound parameter, and a filter not given (NULL) drops out.
WITH matched AS (
    SELECT {alias}.id
    FROM {table} {alias}
    WHERE {where}
)
SELECT (SELECT count(*) FROM matched) AS matched,
       coalesce((SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM matched ORDER BY id
                 LIMIT %(limit)s OFFSET %(offset)s) p), '{{}}') AS ids
