#!/usr/bin/env bash
# scripts/test.sh: the project's one test command (`make test`, and CI's
# .ci/run). It installs what is missing, starts the servers the tests need on
# loopback in temporary folders, then runs gofmt, go vet, staticcheck and
# `go test -race ./...` with HERD_REQUIRE_SERVICES=1, so that a test needing
# a server fails instead of skipping.
#
#   bash scripts/test.sh              everything
#   bash scripts/test.sh --lint-only  gofmt, vet and staticcheck only
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="/usr/local/go/bin:$PATH"
export PATH="$(go env GOPATH)/bin:$PATH"

STATICCHECK_VERSION="(0.8.2)" # what `staticcheck -version` prints for v0.8.2
STATICCHECK_MODULE=honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Debian packages the tests need; later work adds redis-server, postgresql…
APT_PACKAGES=()

step() { printf '\n==> %s\n' "$*"; }

need_apt() {
	local missing=() p
	for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
	((${#missing[@]})) || return 0
	step "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

need_staticcheck() {
	if ! command -v staticcheck >/dev/null 2>&1 || ! staticcheck -version 2>/dev/null | grep -qF "$STATICCHECK_VERSION"; then
		step "installing staticcheck"
		go install "$STATICCHECK_MODULE"
	fi
}

((${#APT_PACKAGES[@]})) && need_apt "${APT_PACKAGES[@]}"
need_staticcheck

# Servers the tests need start here, on free loopback ports in temporary
# folders, and are stopped by the trap. Each passes its address to the tests
# in an environment variable (e.g. HERD_TEST_REDIS_URL).
cleanup() { :; }
trap cleanup EXIT

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

[ "${1:-}" = "--lint-only" ] && exit 0

step "go test -race"
HERD_REQUIRE_SERVICES=1 go test -race -count=1 -timeout 20m ./...
