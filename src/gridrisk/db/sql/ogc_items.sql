-- One page of an OGC API collection's items, and how many match in all, in one statement.
-- The braced names are filled from the collection registry (ogc/collections.py);
-- every value is a bound parameter. Features come out as GeoJSON texts joined by commas, as
-- UTF-8 bytes (bytea): the API writes them out without decoding and re-encoding them.
WITH page AS (
    SELECT {order_key} AS k, {feature} AS f
    FROM {source}
    WHERE {where}
    ORDER BY {order_key}
    LIMIT %(limit)s OFFSET %(offset)s
),
counted AS (
    SELECT count(*) AS n FROM page
)
SELECT CASE
           -- A short page already tells the total (everything after the offset is in it), so
           -- the count below, an InitPlan run only when its value is needed, is skipped.
           WHEN n < %(limit)s AND (n > 0 OR %(offset)s = 0) THEN %(offset)s + n
           ELSE (SELECT count(*) FROM {count_source} WHERE {where})
       END AS matched,
       n AS returned,
       (SELECT convert_to(coalesce(string_agg(f, ',' ORDER BY k), ''), 'UTF8') FROM page) AS features
FROM counted
