-- The cells an API key's holder works in (linked through cell_workers), in layer and code order.
SELECT DISTINCT layer, cell_code AS code FROM cell_workers WHERE api_key_id = %(key_id)s
ORDER BY layer, code
