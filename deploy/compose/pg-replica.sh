#!/bin/sh
# The replica's entrypoint: on first start copy the primary with
# pg_basebackup -R (which writes standby.signal and primary_conninfo),
# then run as a hot standby. PGPASSWORD and PRIMARY_HOST come from
# compose.yaml.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	chown postgres:postgres "$PGDATA"
	chmod 700 "$PGDATA"
	until su-exec postgres pg_basebackup -h "$PRIMARY_HOST" -U shop -D "$PGDATA" -R -X stream -P; do
		echo "replica: waiting for the primary" >&2
		sleep 2
	done
fi
exec su-exec postgres postgres -c hot_standby=on
