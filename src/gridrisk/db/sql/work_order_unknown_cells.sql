-- The LAYER:CODE pairs that name no cell, in the order given: one query for a whole list of links.
SELECT u.layer, u.code FROM unnest(%(layers)s::text[], %(codes)s::text[]) WITH ORDINALITY AS u(layer, code, n)
WHERE NOT EXISTS (SELECT 1 FROM cells c WHERE c.layer = u.layer AND c.code = u.code)
ORDER BY u.n
