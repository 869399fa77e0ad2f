#!/bin/sh
# Runs once, when the primary's data folder is first made (the postgres
# image's /docker-entrypoint-initdb.d): lets the shop user stream WAL to the
# replica (compose.yaml's postgres-replica).
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "ALTER ROLE $POSTGRES_USER REPLICATION"
echo "host replication $POSTGRES_USER all scram-sha-256" >>"$PGDATA/pg_hba.conf"
