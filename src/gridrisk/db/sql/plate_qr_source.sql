-- The address plate code of one risk source (NULL when it has none; no row when there is no such source).
SELECT plate_code FROM risk_sources WHERE id = %(id)s
