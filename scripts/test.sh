#!/usr/bin/env bash
# scripts/test.sh: the project's one test command (`make test`, and CI's
# .ci/run). It installs what is missing, starts the servers the tests need on
# loopback in temporary folders, then runs gofmt, go vet, staticcheck and
# `go test -race ./...` with HERD_REQUIRE_SERVICES=1, so that a test needing
# a server fails instead of skipping.
#
#   bash scripts/test.sh              everything
#   bash scripts/test.sh --lint-only  go vet and staticcheck only (`make lint`)
#   bash scripts/test.sh --services   start Redis and PostgreSQL, print their
#                                     HERD_TEST_* variables, serve until ^C
set -euo pipefail
cd "$(dirname "$0")/.."

# Go may be missing from PATH in a non-login shell on a fresh machine.
export PATH="/usr/local/go/bin:$PATH"
export PATH="$(go env GOPATH)/bin:$PATH"
gobin=$(go env GOBIN)
[ -n "$gobin" ] && export PATH="$gobin:$PATH"

STATICCHECK_VERSION="(0.8.2)" # what `staticcheck -version` prints for v0.8.2
STATICCHECK_MODULE=honnef.co/go/tools/cmd/staticcheck@v0.8.2

# ---- Debian packages the tests need -----------------------------------------
# gcc and libc6-dev: `go test -race` needs cgo; redis-server and
# postgresql-15 are the real servers the registry and shop tests use;
# nodejs, python3 and systemd (systemd-analyze) are programs tests run
# (testenv.Tool fails a test without them under HERD_REQUIRE_SERVICES=1);
# chromium loads the dashboard, tmux drives `herd monit`, and buildah,
# podman and runc build and run the container image (no Docker engine here).
APT_PACKAGES=(gcc libc6-dev redis-server postgresql-15 nodejs python3 systemd
	chromium tmux buildah podman runc)

step() { printf '\n==> %s\n' "$*"; }

# quietly CMD...: run CMD, showing its output only if it fails.
quietly() {
	local out
	if ! out=$("$@" 2>&1); then
		printf '%s\n' "$out" >&2
		echo "failed: $*" >&2
		return 1
	fi
}

# need_apt PKG...: install the Debian packages that are missing (apt-get update
# runs once, and only when something is missing).
apt_updated=
need_apt() {
	local missing=() p
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	((${#missing[@]})) || return 0
	step "installing ${missing[*]}"
	if [ -z "$apt_updated" ]; then
		quietly apt-get update
		apt_updated=1
	fi
	quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

need_staticcheck() {
	if ! staticcheck -version 2>/dev/null | grep -qF "$STATICCHECK_VERSION"; then
		step "installing staticcheck"
		# go install will not replace a non-Go file, so clear the target first
		local dir=${gobin:-$(go env GOPATH | cut -d: -f1)/bin}
		rm -f "$dir/staticcheck"
		quietly go install "$STATICCHECK_MODULE"
		hash -r
		staticcheck -version | grep -qF "$STATICCHECK_VERSION" || {
			echo "staticcheck on PATH is not ${STATICCHECK_VERSION}: $(command -v staticcheck)" >&2
			exit 1
		}
	fi
}

# h2spec, the HTTP/2 conformance suite TestH2spec runs against herd's TLS listener.
H2SPEC_MODULE=github.com/summerwind/h2spec/cmd/h2spec@v2.2.1+incompatible
need_h2spec() {
	command -v h2spec >/dev/null 2>&1 && return 0
	step "installing h2spec"
	quietly go install "$H2SPEC_MODULE"
	hash -r
}

if ((${#APT_PACKAGES[@]})); then need_apt "${APT_PACKAGES[@]}"; fi
need_staticcheck
need_h2spec

# ---- Services the tests need ------------------------------------------------
# Start them here, on free loopback ports in temporary folders, stop them in
# cleanup, and pass each address to the tests in an environment variable, e.g.
#   redis-server --port "$port" --dir "$tmp" --daemonize no & SERVICE_PIDS+=($!)
#   export HERD_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
# Tests read that variable and skip without it, unless HERD_REQUIRE_SERVICES=1
# (set below), in which case they fail.
SERVICE_PIDS=()
SERVICE_TMP=
PG_DATA=
PG_BIN=/usr/lib/postgresql/15/bin
cleanup() {
	local p
	if [ -n "$PG_DATA" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
	fi
	for p in "${SERVICE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${SERVICE_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	[ -n "$SERVICE_TMP" ] && rm -rf "$SERVICE_TMP"
}
trap cleanup EXIT

# free_port: a loopback TCP port nothing listens on now.
free_port() {
	local port
	while :; do
		port=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
}

# wait_for WHAT CMD...: retry CMD for up to 15 s.
wait_for() {
	local what=$1 i
	shift
	for i in $(seq 150); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$what did not start" >&2
	return 1
}

start_services() {
	SERVICE_TMP=$(mktemp -d /tmp/herd-test.XXXXXX)
	chmod 755 "$SERVICE_TMP"

	step "starting redis-server"
	local rport
	rport=$(free_port)
	redis-server --port "$rport" --bind 127.0.0.1 --dir "$SERVICE_TMP" --save '' --appendonly no \
		--daemonize no --loglevel warning >"$SERVICE_TMP/redis.log" 2>&1 &
	SERVICE_PIDS+=($!)
	wait_for redis-server redis-cli -p "$rport" ping || { cat "$SERVICE_TMP/redis.log" >&2; exit 1; }
	export HERD_TEST_REDIS_URL="redis://127.0.0.1:$rport/0"

	# PostgreSQL refuses to run as root: its folder belongs to postgres.
	step "starting postgresql"
	local pport
	pport=$(free_port)
	PG_DATA=$SERVICE_TMP/pg
	mkdir "$PG_DATA" && chown postgres "$PG_DATA"
	quietly runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -A trust -U postgres
	cat >>"$PG_DATA/postgresql.conf" <<-EOF
		port = $pport
		listen_addresses = '127.0.0.1'
		unix_socket_directories = '$PG_DATA'
		fsync = off
		max_connections = 200
		wal_level = replica
		max_wal_senders = 10
		max_replication_slots = 10
		wal_keep_size = '256MB'
		hot_standby_feedback = on
	EOF
	# streaming replicas (internal/testenv's PostgresReplica makes them with
	# pg_basebackup) connect over loopback without a password.
	echo "host replication all 127.0.0.1/32 trust" >>"$PG_DATA/pg_hba.conf"
	quietly runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w start
	export HERD_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pport/postgres?sslmode=disable"
	export HERD_TEST_PG_BIN="$PG_BIN"
}

# ---- Checks -----------------------------------------------------------------
if [ "${1:-}" = "" ]; then
	step "gofmt"
	go_files=()
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# tracked files, plus new ones not yet added (but not ignored ones)
		while IFS= read -r -d '' f; do
			[ -f "$f" ] && go_files+=("$f")
		done < <(git ls-files -z --cached --others --exclude-standard -- '*.go')
	else
		while IFS= read -r -d '' f; do go_files+=("$f"); done \
			< <(find . -name '*.go' -not -path './.git/*' -print0)
	fi
	if ((${#go_files[@]})); then
		unformatted=$(gofmt -l "${go_files[@]}")
		if [ -n "$unformatted" ]; then
			echo "gofmt would change these files (run gofmt -w on them):"
			printf '%s\n' "$unformatted"
			exit 1
		fi
	fi
fi

if [ "${1:-}" != "--services" ]; then
	step "go vet"
	go vet ./...

	step "staticcheck"
	staticcheck ./...
fi

[ "${1:-}" = "--lint-only" ] && exit 0

start_services
if [ "${1:-}" = "--services" ]; then
	echo "export HERD_TEST_REDIS_URL='$HERD_TEST_REDIS_URL' HERD_TEST_POSTGRES_URL='$HERD_TEST_POSTGRES_URL' HERD_TEST_PG_BIN='$HERD_TEST_PG_BIN'"
	echo "serving until interrupted" >&2
	while :; do sleep 3600; done
fi

step "go test -race"
HERD_REQUIRE_SERVICES=1 go test -race -count=1 -timeout 20m ./...

# The proxy's raw system calls (internal/proxy/fdio.go) are built only
# without -race; its tests run once more on them.
step "go test ./internal/proxy (without -race)"
go test -count=1 -timeout 5m ./internal/proxy

# Bounded fuzzing of the parsers and the request path: each target runs for
# a fixed time; a failure leaves its input under testdata/fuzz for go test.
step "fuzz (bounded)"
go test -run '^$' -fuzz '^FuzzServeHTTP$' -fuzztime 15s ./internal/proxy
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 10s ./internal/config
go test -run '^$' -fuzz '^FuzzParseRequest$' -fuzztime 10s ./internal/h1
go test -run '^$' -fuzz '^FuzzChunked$' -fuzztime 10s ./internal/h1
