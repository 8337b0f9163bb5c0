#!/bin/bash
# The replica service of compose.yml (profile scale-out): on first start, a base backup of the
# primary with its own replication slot; then PostgreSQL as a hot standby that streams from it.
set -euo pipefail
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  until pg_isready -h db -U "$POSTGRES_USER" -d "$POSTGRES_DB" >/dev/null 2>&1; do sleep 1; done
  # A slot left by an earlier replica volume would keep WAL for nobody: start from a fresh one.
  psql -h db -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc \
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'compose_replica' AND NOT active" >/dev/null
  pg_basebackup -h db -U "$POSTGRES_USER" -D "$PGDATA" --write-recovery-conf --wal-method=stream \
    --create-slot --slot=compose_replica --checkpoint=fast
  chmod 700 "$PGDATA"
fi
exec postgres -c hot_standby=on -c hot_standby_feedback=on
