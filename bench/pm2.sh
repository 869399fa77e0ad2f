#!/usr/bin/env bash
# bench/pm2.sh: herd's process manager against PM2's cluster mode, with two
# instances of the same unmodified Node hello world (bench/node/server.js):
#   node         one Node process, no manager (the ceiling for one core)
#   pm2          pm2 start server.js -i 2 (cluster mode), private PM2_HOME
#   herd-shared  herd, mode: shared_socket, 2 instances
#   herd-proxy   herd, proxy mode, 2 instances behind its balancer
#   nginx        nginx with 2 workers in front of 2 Node processes
# Interleaved rounds of wrk -t1 -c64 -d10s; medians with ratios to pm2. Then
# footprints: idle RSS of herd with 4 instances and of the PM2 daemon, and how
# long `herd status` and `pm2 ping` take.
#
#   ROUNDS=3 bash bench/pm2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin:$PATH"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}

source bench/lib.sh
need wrk nginx-light
command -v node >/dev/null || need nodejs
CACHE=${HERD_BENCH_CACHE:-$HOME/.cache/herd-bench}
PM2=$CACHE/pm2/node_modules/.bin/pm2
if [ ! -x "$PM2" ]; then
	echo "installing pm2 from npm into $CACHE/pm2"
	npm install --prefix "$CACHE/pm2" pm2@latest --no-audit --no-fund --loglevel=error >/dev/null
fi

RUN=$(mktemp -d /tmp/herd-bench.XXXXXX)
PIDS=()
export PM2_HOME=$RUN/pm2
trap cleanup EXIT
SERVER=$PWD/bench/node/server.js
NODE=$(command -v node)
go build -o "$RUN/herd" ./cmd/herd

declare -A PORT PROCPID
PORT[node]=$(freeport)
PORT=${PORT[node]} "$NODE" "$SERVER" & PIDS+=($!); PROCPID[node]=$!

PORT[pm2]=$(freeport)
PORT=${PORT[pm2]} "$PM2" start "$SERVER" -i 2 --name bench >/dev/null
PROCPID[pm2]=$(cat "$PM2_HOME/pm2.pid")

herd_up() { # herd_up NAME YAML
	mkdir -p "$RUN/$1"
	printf '%s\n' "$2" >"$RUN/$1/herd.yaml"
	"$RUN/herd" up -f "$RUN/$1/herd.yaml" >"$RUN/$1/log" 2>&1 & PIDS+=($!); PROCPID[$1]=$!
}
PORT[herd-shared]=$(freeport)
herd_up herd-shared "listen: 127.0.0.1:$(freeport)
admin: 127.0.0.1:$(freeport)
apps:
  node:
    command: $NODE $SERVER
    mode: shared_socket
    listen: 127.0.0.1:${PORT[herd-shared]}
    instances: 2"
PORT[herd-proxy]=$(freeport)
herd_up herd-proxy "listen: 127.0.0.1:${PORT[herd-proxy]}
admin: 127.0.0.1:$(freeport)
apps:
  node:
    command: $NODE $SERVER
    instances: 2
routes:
  - path: /
    to: node
    balance: least_conn"

N1=$(freeport); N2=$(freeport)
PORT=$N1 "$NODE" "$SERVER" & PIDS+=($!)
PORT=$N2 "$NODE" "$SERVER" & PIDS+=($!)
PORT[nginx]=$(freeport)
start_nginx nginx "${PORT[nginx]}" "$N1" "$N2"

TARGETS="node pm2 herd-shared herd-proxy nginx"
for t in $TARGETS; do waitport "${PORT[$t]}"; done
sleep 1 # let every instance come up behind the shared sockets

RESULTS=$RUN/results.tsv
: >"$RESULTS"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores; node $("$NODE" --version), pm2 $("$PM2" --version 2>/dev/null | tail -1); wrk -t1 -c$CONNS -d$DURATION; $ROUNDS rounds, interleaved"
for round in $(seq "$ROUNDS"); do
	for t in $TARGETS; do
		measure "$round" "$t" "http://127.0.0.1:${PORT[$t]}/" "${PROCPID[$t]:-}"
	done
done
medians "$RESULTS" pm2

echo
echo "footprint:"
# herd with 4 idle instances (scale the shared app to 4), after a quiet moment.
"$RUN/herd" scale node 4 -f "$RUN/herd-shared/herd.yaml" >/dev/null
sleep 5
t0=$(cpu_ticks "${PROCPID[herd-shared]}" herd); sleep 10; t1=$(cpu_ticks "${PROCPID[herd-shared]}" herd)
echo "herd RSS, 4 idle instances: $(( $(rss_kb "${PROCPID[herd-shared]}" herd) / 1024 )) MB; idle CPU over 10 s: $(( (t1 - t0) * 10 )) ms"
echo "pm2 daemon RSS, 2 instances: $(( $(rss_kb "${PROCPID[pm2]}" pm2) / 1024 )) MB"
time_ms() { # median wall time of 11 runs of a command, in ms
	for _ in $(seq 11); do
		s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
	done | sort -n | sed -n 6p
}
echo "herd status: $(time_ms "$RUN/herd" status -f "$RUN/herd-shared/herd.yaml") ms median; pm2 ping: $(time_ms "$PM2" ping) ms median"
