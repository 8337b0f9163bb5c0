-- Every message applied to one warning, oldest first: who, when, which fields, what it did to the orders.
SELECT version, at, by, op, message, changes, orders FROM warning_history
WHERE warning_id = %(warning_id)s ORDER BY id
