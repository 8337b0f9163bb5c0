-- The id of one cell, by layer and code.
SELECT id FROM cells WHERE layer = %(layer)s AND code = %(code)s
