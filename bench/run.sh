#!/usr/bin/env bash
# bench/run.sh: herd's proxy side by side with tuned peers (nginx, haproxy,
# caddy when installed) in front of two instances of bench/backend, on
# loopback. Runs are interleaved, ROUNDS times, and the medians are printed
# with ratios to nginx. Settings and peer configs follow ../shared/PEERS.md.
#
#   bash bench/run.sh                 # ROUNDS=5 DURATION=10s CONNS=64
#   ROUNDS=3 PEERS="nginx" bash bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin:$PATH"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
PEERS=${PEERS:-"nginx haproxy caddy"}

need() { # install Debian packages that are missing
	local missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	if ((${#missing[@]})); then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}
need wrk nginx-light haproxy caddy

RUN=$(mktemp -d /tmp/herd-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$RUN/nginx.pid" ] && kill "$(cat "$RUN/nginx.pid" 2>/dev/null)" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$RUN"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
	ruby -e 'require "socket"; puts TCPServer.new("127.0.0.1",0).addr[1]'; }
waitport() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

go build -o "$RUN/herd" ./cmd/herd
go build -o "$RUN/backend" ./bench/backend

B1=$(freeport); B2=$(freeport)
"$RUN/backend" "$B1" & PIDS+=($!)
"$RUN/backend" "$B2" & PIDS+=($!)
waitport "$B1"; waitport "$B2"

declare -A PORT PROCPID
# herd runs its own two instances of the same backend.
PORT[herd]=$(freeport)
cat >"$RUN/herd.yaml" <<YAML
listen: 127.0.0.1:${PORT[herd]}
admin: 127.0.0.1:$(freeport)
apps:
  be:
    command: $RUN/backend
    instances: 2
routes:
  - path: /
    to: be
    balance: least_conn
YAML
"$RUN/herd" up -f "$RUN/herd.yaml" >"$RUN/herd.log" 2>&1 & PIDS+=($!); PROCPID[herd]=$!
waitport "${PORT[herd]}"

TARGETS="direct herd"
PORT[direct]=$B1
for peer in $PEERS; do
	PORT[$peer]=$(freeport)
	case $peer in
	nginx)
		mkdir -p "$RUN/nginx"
		cat >"$RUN/nginx.conf" <<CONF
worker_processes 2;
pid $RUN/nginx.pid;
error_log $RUN/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $RUN/nginx/body; proxy_temp_path $RUN/nginx/proxy;
    fastcgi_temp_path $RUN/nginx/fcgi; uwsgi_temp_path $RUN/nginx/uwsgi; scgi_temp_path $RUN/nginx/scgi;
    keepalive_requests 1000000;
    upstream be {
        least_conn;
        server 127.0.0.1:$B1;
        server 127.0.0.1:$B2;
        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:${PORT[nginx]};
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
CONF
		nginx -c "$RUN/nginx.conf" -p "$RUN/nginx" -g 'daemon off;' 2>>"$RUN/nginx/stderr" & PIDS+=($!); PROCPID[nginx]=$!
		;;
	haproxy)
		cat >"$RUN/haproxy.cfg" <<CONF
global
    nbthread 2
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind 127.0.0.1:${PORT[haproxy]}
    default_backend be
backend be
    balance leastconn
    server s1 127.0.0.1:$B1
    server s2 127.0.0.1:$B2
CONF
		haproxy -f "$RUN/haproxy.cfg" -db >"$RUN/haproxy.log" 2>&1 & PIDS+=($!); PROCPID[haproxy]=$!
		;;
	caddy)
		cat >"$RUN/Caddyfile" <<CONF
{
    admin off
    auto_https off
}
http://:${PORT[caddy]} {
    bind 127.0.0.1
    reverse_proxy 127.0.0.1:$B1 127.0.0.1:$B2 {
        lb_policy least_conn
    }
}
CONF
		HOME=$RUN XDG_DATA_HOME=$RUN XDG_CONFIG_HOME=$RUN caddy run --config "$RUN/Caddyfile" --adapter caddyfile >"$RUN/caddy.log" 2>&1 & PIDS+=($!); PROCPID[caddy]=$!
		;;
	*) echo "unknown peer $peer" >&2; exit 2 ;;
	esac
	waitport "${PORT[$peer]}"
	TARGETS="$TARGETS $peer"
done

# cpu_ticks PID NAME: user+system ticks of PID and its children (nginx
# workers), but not of herd's children, which are the backends.
cpu_ticks() {
	local total=0 p kids=""
	[ "$2" != herd ] && kids=$(pgrep -P "$1" 2>/dev/null || true)
	for p in $1 $kids; do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat")))
	done
	echo "$total"
}
# rss_kb PID: resident memory of PID and its children (nginx workers), not herd's instances.
rss_kb() {
	local total=0 p
	local kids=""
	[ "$2" != herd ] && kids=$(pgrep -P "$1" 2>/dev/null || true)
	for p in $1 $kids; do
		total=$((total + $(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$total"
}

RESULTS=$RUN/results.tsv
: >"$RESULTS"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores; wrk -t1 -c$CONNS -d$DURATION; $ROUNDS rounds, interleaved"
for round in $(seq "$ROUNDS"); do
	for t in $TARGETS; do
		url="http://127.0.0.1:${PORT[$t]}/"
		wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null # warm-up
		pid=${PROCPID[$t]:-}
		before=0; [ -n "$pid" ] && before=$(cpu_ticks "$pid" "$t")
		out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$url")
		after=0; [ -n "$pid" ] && after=$(cpu_ticks "$pid" "$t")
		rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
		p99=$(awk '$1=="99%"{print $2}' <<<"$out")
		reqs=$(awk '/requests in/{print $1}' <<<"$out")
		errs=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
		cpu_us=$(awk -v d=$((after - before)) -v n="$reqs" 'BEGIN{ if (n>0) printf "%.1f", d*10000/n; else print "-" }')
		rss=0; [ -n "$pid" ] && rss=$(rss_kb "$pid" "$t")
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rps" "$p99" "$cpu_us" "$rss" "$errs" >>"$RESULTS"
		printf 'round %d %-8s %10s req/s  p99 %-8s cpu/req %6s us  rss %6s kB %s\n' "$round" "$t" "$rps" "$p99" "$cpu_us" "$rss" "$errs"
	done
done

echo
echo "medians:"
awk -F'\t' '
function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
{ n[$1]++; rps[$1, n[$1]] = $2; p99[$1, n[$1]] = ms($3); cpu[$1, n[$1]] = $4; rss[$1, n[$1]] = $5; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
function median(arr, name, cnt,    i, j, t, v) {
	for (i = 1; i <= cnt; i++) v[i] = arr[name, i]
	for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
	return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
}
END {
	for (i = 1; i <= k; i++) { t = order[i]; R[t] = median(rps, t, n[t]); P[t] = median(p99, t, n[t]); C[t] = median(cpu, t, n[t]); M[t] = median(rss, t, n[t]) }
	base = ("nginx" in R) ? "nginx" : "direct"
	printf "%-8s %12s %10s %12s %10s %10s\n", "target", "req/s", "p99 ms", "cpu/req us", "rss MB", "x " base
	for (i = 1; i <= k; i++) { t = order[i]; printf "%-8s %12.0f %10.2f %12s %10.1f %10.2f\n", t, R[t], P[t], C[t], M[t] / 1024, R[t] / R[base] }
}' "$RESULTS"
