#!/bin/sh
# Run once by the postgis image when it creates the primary's cluster (docker-entrypoint-initdb.d):
# let the replica service stream from it with the same credentials (compose.yml, profile scale-out).
set -e
echo "host replication ${POSTGRES_USER} all scram-sha-256" >> "$PGDATA/pg_hba.conf"
