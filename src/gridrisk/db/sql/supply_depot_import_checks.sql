-- Imported depots: every stock item must be in the catalogue, and a depot's new stock may not go
-- below what live work orders have reserved of it. (row_no, field, problem, value) per problem.
SELECT s.row_no, 'stock.' || k.item,
       format('Unknown supply item ''%%s''; see GET /supply-items.', k.item), k.item
FROM import_stage s
CROSS JOIN LATERAL jsonb_object_keys(s.stock) AS k(item)
WHERE NOT EXISTS (SELECT 1 FROM supply_items i WHERE i.item = k.item)
UNION ALL
SELECT s.row_no, 'stock.' || r.item,
       format('%%s of ''%%s'' are reserved for live work orders; the stock cannot go below that.',
              r.reserved, r.item),
       coalesce(s.stock ->> r.item, '0')
FROM import_stage s
JOIN supply_depots d ON d.code = s.code
JOIN (SELECT depot_id, item, sum(quantity)::int AS reserved FROM supply_reservations
      WHERE released_at IS NULL GROUP BY depot_id, item) r ON r.depot_id = d.id
WHERE coalesce((s.stock ->> r.item)::int, 0) < r.reserved
ORDER BY 1
