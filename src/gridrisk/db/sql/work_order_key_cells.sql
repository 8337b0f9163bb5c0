-- Link an API key to cells, replacing its links: for each cell, a worker listed there under the
-- key's name (without a key yet) takes it, or the key's holder is added as a worker of the cell.
-- Links to cells no longer wanted are dropped (the worker stays listed, without the key).
WITH wanted AS (
    SELECT DISTINCT u.layer, u.code FROM unnest(%(layers)s::text[], %(codes)s::text[]) AS u(layer, code)
),
k AS (
    SELECT id, name FROM api_keys WHERE id = %(key_id)s
),
unlinked AS (
    UPDATE cell_workers cw SET api_key_id = NULL
    WHERE cw.api_key_id = %(key_id)s
      AND NOT EXISTS (SELECT 1 FROM wanted x WHERE x.layer = cw.layer AND x.code = cw.cell_code)
    RETURNING cw.id
),
todo AS (
    SELECT x.layer, x.code, k.id AS key_id, k.name FROM wanted x, k
    WHERE NOT EXISTS (SELECT 1 FROM cell_workers cw
                      WHERE cw.api_key_id = k.id AND cw.layer = x.layer AND cw.cell_code = x.code)
),
claimed AS (
    UPDATE cell_workers cw SET api_key_id = t.key_id
    FROM todo t
    WHERE cw.layer = t.layer AND cw.cell_code = t.code AND cw.name = t.name AND cw.api_key_id IS NULL
    RETURNING cw.layer, cw.cell_code
),
added AS (
    INSERT INTO cell_workers (layer, cell_code, name, api_key_id)
    SELECT t.layer, t.code, t.name, t.key_id FROM todo t
    WHERE NOT EXISTS (SELECT 1 FROM claimed c WHERE c.layer = t.layer AND c.cell_code = t.code)
    RETURNING id
)
SELECT (SELECT count(*) FROM unlinked)::int AS unlinked,
       (SELECT count(*) FROM claimed)::int AS claimed,
       (SELECT count(*) FROM added)::int AS added
