-- The id of one cell by layer and code (no row when there is no such cell).
SELECT id FROM cells WHERE layer = %(layer)s AND code = %(code)s
