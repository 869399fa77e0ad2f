#!/usr/bin/env bash
# bench/db/run.sh: dbrouter against raw pgxpool, pgbouncer and pgpool-II, on
# a private PostgreSQL primary and streaming replica in a temporary folder
# (the test servers are left alone). It installs what is missing from
# Debian, starts everything on free loopback ports as the postgres user,
# runs bench/db's Go program and stops it all. See README.md.
#
#   bash bench/db/run.sh                 ROUNDS=5 DURATION=2s CONNS=8 PAIRS=10000
#   APPLY_DELAY=5ms: the replica's recovery_min_apply_delay (the replay lag
#   the stale-read count runs under)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$PATH"
source bench/lib.sh

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-2s}
CONNS=${CONNS:-8}
PAIRS=${PAIRS:-10000}
APPLY_DELAY=${APPLY_DELAY:-5ms}
PGBIN=${HERD_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}

need postgresql-15 pgbouncer pgpool2

RUN=$(mktemp -d /tmp/herd-bench-db.XXXXXX)
chown postgres "$RUN"
chmod 755 "$RUN"
as_pg() { (cd "$RUN" && runuser -u postgres -- "$@"); }
PIDS=()
stop_all() {
	# runuser does not pass signals on: end its children (ours) too.
	for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	for d in "$RUN/replica" "$RUN/primary"; do
		[ -f "$d/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
	done
	rm -rf "$RUN"
}
trap stop_all EXIT

P_PORT=$(freeport)
R_PORT=$(freeport)
B_PORT=$(freeport)
POOL_PORT=$(freeport)
PCP_PORT=$(freeport)

echo "==> primary on $P_PORT, replica on $R_PORT (apply delay $APPLY_DELAY), pgbouncer on $B_PORT, pgpool on $POOL_PORT"
as_pg "$PGBIN/initdb" -D "$RUN/primary" -A trust -U postgres >/dev/null
cat >>"$RUN/primary/postgresql.conf" <<CONF
port = $P_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN'
wal_level = replica
max_wal_senders = 4
max_connections = 200
shared_buffers = 256MB
CONF
echo "host replication all 127.0.0.1/32 trust" >>"$RUN/primary/pg_hba.conf"
as_pg "$PGBIN/pg_ctl" -D "$RUN/primary" -l "$RUN/primary.log" -w start >/dev/null
as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$P_PORT" -U postgres -qc "create database bench" >/dev/null
as_pg "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$P_PORT" -U postgres -D "$RUN/replica" -R -X stream -c fast
cat >>"$RUN/replica/postgresql.conf" <<CONF
port = $R_PORT
recovery_min_apply_delay = '$APPLY_DELAY'
CONF
as_pg "$PGBIN/pg_ctl" -D "$RUN/replica" -l "$RUN/replica.log" -w start >/dev/null

# pgbouncer in front of the primary, transaction pooling (the usual mode).
cat >"$RUN/pgbouncer.ini" <<CONF
[databases]
bench = host=127.0.0.1 port=$P_PORT dbname=bench
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $B_PORT
unix_socket_dir = $RUN
auth_type = trust
auth_file = $RUN/users.txt
pool_mode = transaction
default_pool_size = $CONNS
max_client_conn = 400
pidfile = $RUN/pgbouncer.pid
logfile = $RUN/pgbouncer.log
ignore_startup_parameters = extra_float_digits
CONF
echo '"postgres" ""' >"$RUN/users.txt"
chown postgres "$RUN"/pgbouncer.ini "$RUN"/users.txt
as_pg pgbouncer "$RUN/pgbouncer.ini" &
PIDS+=($!)

# pgpool-II over both, streaming replication mode with load balancing.
# PGPOOL=1 runs it: in the first run here its children spun at full CPU
# after the benchmark and the run hung (see README.md), so it is opt-in.
if [ -n "${PGPOOL:-}" ]; then
cat >"$RUN/pgpool.conf" <<CONF
backend_clustering_mode = 'streaming_replication'
listen_addresses = '127.0.0.1'
port = $POOL_PORT
unix_socket_directories = '$RUN'
pcp_listen_addresses = '127.0.0.1'
pcp_port = $PCP_PORT
pcp_socket_dir = '$RUN'
backend_hostname0 = '127.0.0.1'
backend_port0 = $P_PORT
backend_weight0 = 1
backend_flag0 = 'ALLOW_TO_FAILOVER'
backend_hostname1 = '127.0.0.1'
backend_port1 = $R_PORT
backend_weight1 = 1
backend_flag1 = 'ALLOW_TO_FAILOVER'
load_balance_mode = on
num_init_children = 32
max_pool = 2
sr_check_period = 0
sr_check_user = 'postgres'
health_check_period = 0
enable_pool_hba = off
pid_file_name = '$RUN/pgpool.pid'
logdir = '$RUN'
log_destination = 'stderr'
failover_on_backend_error = off
CONF
: >"$RUN/pcp.conf"
chown postgres "$RUN"/pgpool.conf "$RUN"/pcp.conf
as_pg pgpool -n -f "$RUN/pgpool.conf" -F "$RUN/pcp.conf" >"$RUN/pgpool.log" 2>&1 &
PIDS+=($!)
waitport "$POOL_PORT"
fi

waitport "$B_PORT"

q='sslmode=disable'
go run ./bench/db \
	-primary "postgres://postgres@127.0.0.1:$P_PORT/bench?$q" \
	-replica "postgres://postgres@127.0.0.1:$R_PORT/bench?$q" \
	-pgbouncer "postgres://postgres@127.0.0.1:$B_PORT/bench?$q&default_query_exec_mode=exec" \
	${PGPOOL:+-pgpool "postgres://postgres@127.0.0.1:$POOL_PORT/bench?$q"} \
	-rounds "$ROUNDS" -duration "$DURATION" -conns "$CONNS" -pairs "$PAIRS" ${ONLY:+-only "$ONLY"} || {
	echo "--- pgpool.log"; tail -20 "$RUN/pgpool.log"; echo "--- pgbouncer.log"; tail -20 "$RUN/pgbouncer.log"; exit 1
}
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
echo "servers: $("$PGBIN/postgres" --version), $(pgbouncer --version | head -1), $(pgpool --version 2>&1 | head -1)"
