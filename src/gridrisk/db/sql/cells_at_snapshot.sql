-- The first statement of a lookup-index load: every query after it reads one snapshot.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY
