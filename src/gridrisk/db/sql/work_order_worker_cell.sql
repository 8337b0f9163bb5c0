-- Whether an API key is linked to a cell as one of its workers (one row) or not (no row).
SELECT 1 FROM cell_workers WHERE api_key_id = %(key_id)s AND layer = %(layer)s AND cell_code = %(code)s
