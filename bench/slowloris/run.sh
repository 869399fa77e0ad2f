#!/usr/bin/env bash
# bench/slowloris/run.sh: normal clients' latency while slow clients attack
# the proxy, herd against nginx (PEERS.md's tuned config) under the same
# attack, on loopback. For every target, in turn, ROUNDS times interleaved:
#   1. a baseline: `wrk -t1 -cCONNS -dDURATION --latency` after a 1 s warm-up;
#   2. the same wrk while bench/slowloris/attack holds SLOWLORIS connections
#      that send a request head a byte a second and SLOWREAD connections that
#      read a BIG_SIZE answer (1 MiB; bench/slowloris/bigbody, behind /big) a
#      byte a second; wrk starts SETTLE seconds into the attack, once it is in place.
# Then medians, with ratios to nginx, and what became of the attack's
# connections (held by the proxy to the end, or closed, after how long).
#
#   bash bench/slowloris/run.sh          # ROUNDS=3 DURATION=10s CONNS=8
#   PEERS="nginx nginx-cht3" bash bench/slowloris/run.sh  # nginx at 3 s too
#   BIG_SIZE=$((16<<20)) HERDS=herd bash bench/slowloris/run.sh  # more than the kernel buffers
#
# Targets: `herd`, its defaults with the fast path on (read_header_timeout
# 10s, idle_timeout 75s); `herd-rht3`, the same with read_header_timeout: 3s;
# `nginx`, PEERS.md's config (client_header_timeout and send_timeout at
# their 60 s defaults, worker_connections 4096 per worker); `nginx-chtN`, the
# same with client_header_timeout Ns. /big goes to one
# bigbody process that all targets share; / to two bench/backend
# instances (herd runs its own, as in bench/run.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="/usr/local/go/bin:$(go env GOPATH 2>/dev/null || echo /root/go)/bin:$PATH"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-8}
SLOWLORIS=${SLOWLORIS:-1000}
SLOWREAD=${SLOWREAD:-100}
SETTLE=${SETTLE:-3}
BIG_SIZE=${BIG_SIZE:-1048576} # bytes in /big's answer
HERDS=${HERDS:-"herd herd-rht3"}
PEERS=${PEERS:-nginx}
PPROF=${PPROF:-} # a herd target: profile it for 8 s during its last attack, into /tmp/herd-slowloris-TARGET.pprof

source bench/lib.sh
need wrk nginx-light

# The attacker holds SLOWLORIS+SLOWREAD sockets, the proxies as many again
# plus their upstreams: raise this script's (and so its children's) limit.
want=$((4 * (SLOWLORIS + SLOWREAD) + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
	hard=$(ulimit -Hn)
	if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then ulimit -n "$want"; else ulimit -n "$hard"; fi
fi

RUN=$(mktemp -d /tmp/herd-slowloris.XXXXXX)
PIDS=()
trap cleanup EXIT

go build -o "$RUN/herd" ./cmd/herd
go build -o "$RUN/backend" ./bench/backend
go build -o "$RUN/bigbody" ./bench/slowloris/bigbody
go build -o "$RUN/attack" ./bench/slowloris/attack

B1=$(freeport); B2=$(freeport); BIG=$(freeport)
"$RUN/backend" "$B1" & PIDS+=($!)
"$RUN/backend" "$B2" & PIDS+=($!)
"$RUN/bigbody" -size "$BIG_SIZE" "$BIG" & PIDS+=($!)
waitport "$B1"; waitport "$B2"; waitport "$BIG"

declare -A PORT PROCPID ADMIN
# start_herd NAME [SERVER_LINES]: herd with its defaults (fast path on,
# access log on), two instances of bench/backend behind /, the shared
# bigbody behind /big, and SERVER_LINES under server:.
start_herd() {
	local name=$1 server=${2:-}
	PORT[$name]=$(freeport); ADMIN[$name]=$(freeport)
	mkdir -p "$RUN/t-$name"
	cat >"$RUN/t-$name/herd.yaml" <<YAML
listen: 127.0.0.1:${PORT[$name]}
admin: 127.0.0.1:${ADMIN[$name]}
apps:
  be:
    command: $RUN/backend
    instances: 2
upstreams:
  big:
    servers:
      - url: http://127.0.0.1:$BIG
routes:
  - path: /big
    to: big
  - path: /
    to: be
    balance: least_conn
${server:+server:
$server}
YAML
	"$RUN/herd" up -f "$RUN/t-$name/herd.yaml" >"$RUN/$name.log" 2>&1 & PIDS+=($!); PROCPID[$name]=$!
	waitport "${PORT[$name]}"
}

TARGETS=""
for h in $HERDS; do
	case $h in
	herd) start_herd herd ;;
	herd-rht*) start_herd "$h" "  read_header_timeout: ${h#herd-rht}s" ;;
	*) echo "unknown herd $h (herd, herd-rhtN)" >&2; exit 2 ;;
	esac
	TARGETS="$TARGETS $h"
done
for peer in $PEERS; do
	case $peer in
	nginx | nginx-cht*)
		PORT[$peer]=$(freeport)
		# PEERS.md's nginx, with /big nested in its location / (so it
		# inherits proxy_http_version and the Connection header);
		# nginx-chtN sets client_header_timeout to N seconds.
		cht=""
		[ "$peer" = nginx ] || cht="client_header_timeout ${peer#nginx-cht}s;"
		NGINX_HTTP="access_log off; $cht
    upstream big { server 127.0.0.1:$BIG; keepalive 16; }" \
		NGINX_LOCATION='location /big { proxy_pass http://big; }' \
			start_nginx "$peer" "${PORT[$peer]}" "$B1" "$B2"
		waitport "${PORT[$peer]}"
		;;
	*) echo "unknown peer $peer (nginx, nginx-chtN)" >&2; exit 2 ;;
	esac
	TARGETS="$TARGETS $peer"
done
for t in $TARGETS; do # each target answers both routes
	curl -fsS -o /dev/null "http://127.0.0.1:${PORT[$t]}/" && curl -fsS -o /dev/null "http://127.0.0.1:${PORT[$t]}/big" ||
		{ echo "$t does not answer / and /big" >&2; exit 1; }
done

# conns T: the target's established connections from clients (wrk's
# included) and to bigbody, as "clients=N upstream_big=M". Clients are
# counted in /proc/net/tcp; ss, which names the process owning the
# upstream side, returned short lists now and then with thousands of
# sockets closing around it, so the upstream count is the largest of three.
conns() {
	local t=$1 proc=herd c u=0 n
	case $t in nginx*) proc=nginx ;; esac
	c=$(awk -v p="$(printf ':%04X' "${PORT[$t]}")" '$4 == "01" && substr($2, length($2) - 4) == p' /proc/net/tcp | wc -l)
	for _ in 1 2 3; do
		n=$(ss -Htnp state established "( dport = :$BIG )" | grep -c "((\"$proc\"" || true)
		((n > u)) && u=$n
	done
	echo "clients=$c upstream_big=$u"
}

dur_s=${DURATION%s}
ATTACK_FOR=$((SETTLE + 1 + dur_s + 2))
BASE=$RUN/base.tsv ATTACKED=$RUN/attack.tsv
: >"$BASE"; : >"$ATTACKED"
LOG=$RUN/attack.log
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); wrk -t1 -c$CONNS -d$DURATION; attack $SLOWLORIS slowloris + $SLOWREAD slow readers of $BIG_SIZE bytes for ${ATTACK_FOR}s, wrk from ${SETTLE}s; $ROUNDS rounds, interleaved"
for round in $(seq "$ROUNDS"); do
	for t in $TARGETS; do
		url="http://127.0.0.1:${PORT[$t]}/"
		RESULTS=$BASE measure "$round" "$t" "$url" "${PROCPID[$t]:-}"

		"$RUN/attack" -addr "127.0.0.1:${PORT[$t]}" -slowloris "$SLOWLORIS" -slowread "$SLOWREAD" \
			-duration "${ATTACK_FOR}s" -every 0 >"$RUN/attack.out" 2>&1 &
		apid=$!
		sleep "$SETTLE"
		at_start=$(conns "$t")
		ppid=""
		if [ "$round" = "$ROUNDS" ] && [ "$t" = "$PPROF" ]; then
			(sleep 2; curl -fsS -o "/tmp/herd-slowloris-$t.pprof" "http://127.0.0.1:${ADMIN[$t]}/debug/pprof/profile?seconds=8") &
			ppid=$!
		fi
		RESULTS=$ATTACKED measure "$round" "$t+attack" "$url" "${PROCPID[$t]:-}"
		at_end=$(conns "$t")
		wait "$apid" || { echo "attack on $t failed:" >&2; cat "$RUN/attack.out" >&2; exit 1; }
		echo "round $round $t: at ${SETTLE}s $at_start; after wrk $at_end" | tee -a "$LOG"
		sed "s/^/round $round $t: /" "$RUN/attack.out" | tee -a "$LOG"
		[ -z "$ppid" ] || wait "$ppid" # the profile
	done
done

echo
echo "medians without attack:"
medians "$BASE" nginx | tail -n +3
echo
echo "medians under attack:"
medians "$ATTACKED" nginx+attack | tail -n +3
# p99 ratios: under attack against without, and against nginx's under attack.
echo
awk -F'\t' '
function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
function median(A, k, t, c,    i, j, x, v) {
	for (i = 1; i <= c; i++) v[i] = A[k, t, i] + 0
	for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
	return (c % 2) ? v[(c + 1) / 2] : (v[c / 2] + v[c / 2 + 1]) / 2
}
{ t = $1; k = sub(/\+attack$/, "", t) ? "a" : "b"; c = ++n[k, t]; P[k, t, c] = ms($3); R[k, t, c] = $2
  if (!(t in seen)) { seen[t] = 1; order[++m] = t } }
END {
	printf "%-10s %12s %12s %12s %12s %14s\n", "target", "p99 base", "p99 attack", "attack/base", "p99 x nginx", "req/s x nginx"
	for (i = 1; i <= m; i++) { t = order[i]; pb[t] = median(P, "b", t, n["b", t]); pa[t] = median(P, "a", t, n["a", t]); ra[t] = median(R, "a", t, n["a", t]) }
	for (i = 1; i <= m; i++) { t = order[i]
		printf "%-10s %9.2f ms %9.2f ms %12.2f %12.2f %14.2f\n", t, pb[t], pa[t], pa[t] / pb[t], pa[t] / pa["nginx"], ra[t] / ra["nginx"] }
}' "$BASE" "$ATTACKED"
