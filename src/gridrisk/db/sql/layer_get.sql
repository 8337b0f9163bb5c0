-- One layer by name: its name and kind (no row when there is no such layer).
SELECT name, kind FROM layers WHERE name = %(layer)s
