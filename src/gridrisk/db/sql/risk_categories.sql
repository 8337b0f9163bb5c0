-- The risk-source categories (a table, so that a city can add its own) with both names.
SELECT code, name AS zh, name_en AS en FROM risk_categories ORDER BY code
