#!/usr/bin/env bash
# bench/run.sh: herd's proxy side by side with tuned peers (nginx, haproxy,
# caddy when installed) in front of two instances of bench/backend, on
# loopback. Runs are interleaved, ROUNDS times, and the medians are printed
# with ratios to nginx. Settings and peer configs follow ../shared/PEERS.md.
#
#   bash bench/run.sh                 # ROUNDS=5 DURATION=10s CONNS=64
#   ROUNDS=3 PEERS="nginx" bash bench/run.sh
#   BASE=b24093c PEERS=nginx bash bench/run.sh   # also herd built from a
#                                     # commit, as herd-base, for an A/B
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin:$PATH"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
PEERS=${PEERS:-"nginx nginx-seed haproxy caddy"}

source bench/lib.sh
need wrk nginx-light haproxy caddy
RUN=$(mktemp -d /tmp/herd-bench.XXXXXX)
PIDS=()
trap cleanup EXIT

go build -o "$RUN/herd" ./cmd/herd
go build -o "$RUN/backend" ./bench/backend
if [ -n "${BASE:-}" ]; then
	mkdir "$RUN/base-src"
	git archive "$BASE" | tar -x -C "$RUN/base-src"
	(cd "$RUN/base-src" && go build -o "$RUN/herd-base-bin" ./cmd/herd)
fi

B1=$(freeport); B2=$(freeport)
"$RUN/backend" "$B1" & PIDS+=($!)
"$RUN/backend" "$B2" & PIDS+=($!)
waitport "$B1"; waitport "$B2"

declare -A PORT PROCPID
# start_herd NAME [ROUTE_LINES] [TOP_LINES]: herd in $RUN/t-NAME with its
# own two instances of the same backend, its defaults (access log on), the
# route's extra lines and extra top-level lines.
start_herd() {
	local name=$1 extra=${2:-} top=${3:-} bin=${4:-$RUN/herd}
	PORT[$name]=$(freeport)
	mkdir -p "$RUN/t-$name"
	cat >"$RUN/t-$name/herd.yaml" <<YAML
listen: 127.0.0.1:${PORT[$name]}
admin: 127.0.0.1:$(freeport)
apps:
  be:
    command: $RUN/backend
    instances: 2
routes:
  - path: /
    to: be
    balance: least_conn
$extra
$top
YAML
	"$bin" up -f "$RUN/t-$name/herd.yaml" >"$RUN/$name.log" 2>&1 & PIDS+=($!); PROCPID[$name]=$!
	waitport "${PORT[$name]}"
}
start_herd herd
# herd-rl: with a per-client rate limit that never refuses, so its cost
# shows (the load-balancer issue's "with rate limiting, logging on").
start_herd herd-rl "    rate_limit:
      rate: 1000000r/s
      burst: 100000
      nodelay: true"

# herd-nolog: without the access log, as the nginx of PEERS.md runs.
start_herd herd-nolog "" "access_log: {format: off}"

TARGETS="direct herd herd-rl herd-nolog"
if [ -n "${BASE:-}" ]; then
	start_herd herd-base "" "" "$RUN/herd-base-bin"
	TARGETS="$TARGETS herd-base"
fi
PORT[direct]=$B1
for peer in $PEERS; do
	PORT[$peer]=$(freeport)
	case $peer in
	nginx)
		start_nginx nginx "${PORT[nginx]}" "$B1" "$B2"
		;;
	nginx-seed)
		# nginx doing what herd-rl does: the seed's proxy_set_header
		# lines, a request id both ways, the security headers, a
		# buffered access log with upstream fields, a limit_req that
		# never refuses.
		NGINX_HTTP="log_format herd '\$remote_addr - \$remote_user [\$time_local] \"\$request\" \$status \$body_bytes_sent \"\$http_referer\" \"\$http_user_agent\" rt=\$request_time uaddr=\$upstream_addr ut=\$upstream_response_time rid=\$request_id';
    access_log $RUN/nginx-seed/access.log herd buffer=64k flush=1s;
    limit_req_zone \$binary_remote_addr zone=rl:10m rate=1000000r/s;" \
		NGINX_LOCATION='limit_req zone=rl burst=100000 nodelay;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Request-Id $request_id;
            add_header X-Request-Id $request_id always;
            add_header X-Content-Type-Options nosniff always;
            add_header X-Frame-Options SAMEORIGIN always;
            add_header Referrer-Policy strict-origin-when-cross-origin always;' \
			start_nginx nginx-seed "${PORT[$peer]}" "$B1" "$B2"
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

RESULTS=$RUN/results.tsv
: >"$RESULTS"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores; wrk -t1 -c$CONNS -d$DURATION; $ROUNDS rounds, interleaved"
for round in $(seq "$ROUNDS"); do
	for t in $TARGETS; do
		measure "$round" "$t" "http://127.0.0.1:${PORT[$t]}/" "${PROCPID[$t]:-}"
	done
done

medians "$RESULTS" nginx
