-- Work orders matching the filters, soonest due first: how many, and the ids of one page.
-- scope_key limits them to the cells the key is linked to (a worker's own cells; assignee=me).
WITH m AS (
    SELECT o.id, o.due_at
    FROM work_orders o
    WHERE (%(warning)s::bigint IS NULL OR o.warning_id = %(warning)s)
      AND (%(cell)s::text IS NULL OR (o.layer = %(layer)s AND o.cell_code = %(cell)s))
      AND (%(statuses)s::text[] IS NULL OR o.status = ANY(%(statuses)s::text[]))
      AND (%(overdue)s::bool IS NULL
           OR %(overdue)s = (o.status IN ('open', 'acknowledged', 'in_progress') AND o.due_at < now()))
      AND (%(scope_key)s::bigint IS NULL OR EXISTS (
           SELECT 1 FROM cell_workers cw
           WHERE cw.api_key_id = %(scope_key)s AND cw.layer = o.layer AND cw.cell_code = o.cell_code))
)
SELECT (SELECT count(*) FROM m)::int AS matched,
       ARRAY(SELECT id FROM m ORDER BY due_at, id LIMIT %(limit)s OFFSET %(offset)s) AS ids
