-- A fingerprint of every worker row (what cells_at.sql shows of them, and their order): changes
-- to cell_workers write no outbox event, so the lookup index compares this instead.
SELECT count(*) AS n,
       coalesce(sum(hashtextextended(
           concat_ws(E'\x1f', w.id, w.layer, w.cell_code, w.name, coalesce(w.phone, E'\x1e')), 0)), 0)::text AS h
FROM cell_workers w
