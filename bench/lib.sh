# bench/lib.sh: helpers shared by the bench scripts (sourced, not run).

need() { # install Debian packages that are missing
	local missing=()
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	if ((${#missing[@]})); then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for f in "$RUN"/*/nginx.pid; do [ -f "$f" ] && kill "$(cat "$f" 2>/dev/null)" 2>/dev/null || true; done
	[ -n "${PM2_HOME:-}" ] && [ -n "${PM2:-}" ] && "$PM2" kill >/dev/null 2>&1 || true
	wait 2>/dev/null || true
	rm -rf "$RUN"
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitport() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

# cpu_ticks PID NAME: user+system ticks of PID and its children (nginx
# workers), but not of herd's children, which are the backends.
cpu_ticks() {
	local total=0 p kids=""
	case "$2" in herd* | pm2*) ;; *) kids=$(pgrep -P "$1" 2>/dev/null || true) ;; esac
	for p in $1 $kids; do
		[ -r "/proc/$p/stat" ] || continue
		total=$((total + $(awk '{print $14+$15}' "/proc/$p/stat")))
	done
	echo "$total"
}
# rss_kb PID NAME: resident memory of PID and its children (nginx workers),
# not herd's, whose children are its instances.
rss_kb() {
	local total=0 p kids=""
	case "$2" in herd* | pm2*) ;; *) kids=$(pgrep -P "$1" 2>/dev/null || true) ;; esac
	for p in $1 $kids; do
		total=$((total + $(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
	done
	echo "$total"
}


# measure ROUND NAME URL [PID]: a warm-up, then one wrk run; appends a row to
# $RESULTS (name, req/s, p99, proxy CPU us per request, RSS kB, errors).
measure() {
	local round=$1 t=$2 url=$3 pid=${4:-} before=0 after=0 rss=0
	wrk -t1 -c"$CONNS" -d1s "$url" >/dev/null # warm-up
	[ -n "$pid" ] && before=$(cpu_ticks "$pid" "$t")
	out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$url")
	[ -n "$pid" ] && after=$(cpu_ticks "$pid" "$t")
	rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
	p99=$(awk '$1=="99%"{print $2}' <<<"$out")
	reqs=$(awk '/requests in/{print $1}' <<<"$out")
	errs=$(awk '/Non-2xx|Socket errors/{print}' <<<"$out" | tr '\n' ' ')
	cpu_us=$(awk -v d=$((after - before)) -v n="$reqs" 'BEGIN{ if (n>0) printf "%.1f", d*10000/n; else print "-" }')
	[ -n "$pid" ] && rss=$(rss_kb "$pid" "$t")
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$rps" "$p99" "$cpu_us" "$rss" "$errs" >>"$RESULTS"
	printf 'round %d %-14s %10s req/s  p99 %-8s cpu/req %6s us  rss %6s kB %s\n' "$round" "$t" "$rps" "$p99" "$cpu_us" "$rss" "$errs"
}

# medians FILE BASE: median of each column per target, with ratios to BASE.
medians() {
	echo
	echo "medians:"
awk -F'\t' -v b="$2" '
function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
{ n[$1]++; rps[$1, n[$1]] = $2; p99[$1, n[$1]] = ms($3); cpu[$1, n[$1]] = $4; rss[$1, n[$1]] = $5; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } }
function median(arr, name, cnt,    i, j, t, v) {
	for (i = 1; i <= cnt; i++) v[i] = arr[name, i]
	for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
	return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
}
END {
	for (i = 1; i <= k; i++) { t = order[i]; R[t] = median(rps, t, n[t]); P[t] = median(p99, t, n[t]); C[t] = median(cpu, t, n[t]); M[t] = median(rss, t, n[t]) }
	base = (b in R) ? b : order[1]
	printf "%-14s %12s %10s %12s %10s %10s\n", "target", "req/s", "p99 ms", "cpu/req us", "rss MB", "x " base
	for (i = 1; i <= k; i++) { t = order[i]; printf "%-14s %12.0f %10.2f %12s %10.1f %10.2f\n", t, R[t], P[t], C[t], M[t] / 1024, R[t] / R[base] }
}' "$1"
}

# start_nginx NAME PORT BACKEND_PORT...: nginx with 2 workers and upstream
# keep-alive in front of the backends (PEERS.md's tuned config), under
# $RUN/NAME. NGINX_HTTP (default "access_log off;") goes into its http block
# and NGINX_LOCATION into its location.
start_nginx() {
	local name=$1 port=$2 servers="" b dir=$RUN/$1
	shift 2
	for b in "$@"; do servers+="        server 127.0.0.1:$b;"$'\n'; done
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    ${NGINX_HTTP:-access_log off;}
    client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    upstream be {
        least_conn;
$servers        keepalive 64;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://be;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            ${NGINX_LOCATION:-}
        }
    }
}
CONF
	nginx -c "$dir/nginx.conf" -p "$dir" -g 'daemon off;' 2>>"$dir/stderr" &
	PIDS+=($!)
	PROCPID[$name]=$!
}
