#!/bin/sh
# deploy/build.sh [TAG]: build deploy/Dockerfile into TAG (default
# localhost/herd:latest) with buildah, with no Docker engine and no registry.
#
# The builder stage's image is made here from the local Go toolchain (go env
# GOROOT) and a minimal shell copied from this machine (sh, mkdir, cp, chown,
# chmod and the libraries ldd names), tagged localhost/herd-builder:GOVERSION,
# and kept: a second build reuses it. Modules come read-only from this
# machine's module cache (GOPROXY=off in the builder: nothing is fetched).
#
# Environment:
#   HERD_BUILDAH_FLAGS  global buildah flags; default "--storage-driver vfs"
#                       (the tests add --root and --runroot of their own)
#   HERD_GOCACHE        a folder kept between builds as the builder's Go
#                       build cache; default none (every build compiles all)
#   BUILDER_IMAGE       use this builder image instead of making one
#   VERSION, REVISION   the image's OCI version and revision labels
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
tag=${1:-localhost/herd:latest}
flags=${HERD_BUILDAH_FLAGS:---storage-driver vfs}
# Limits within this machine's hard limits, and runc: crun refuses its cgroups.
run_flags="--runtime runc --network none --ulimit nofile=20000:20000 --ulimit nproc=1000:1000"
builder=${BUILDER_IMAGE:-localhost/herd-builder:$(go env GOVERSION)}

# shellcheck disable=SC2086 # $flags is a list of flags
if ! buildah $flags inspect --type image "$builder" >/dev/null 2>&1; then
	echo "deploy/build.sh: making $builder from $(go env GOROOT)" >&2
	stage=$(mktemp -d)
	ctr=$(buildah $flags from scratch)
	trap 'rm -rf "$stage"; buildah $flags rm "$ctr" >/dev/null 2>&1 || true' EXIT
	mkdir -p "$stage/bin" "$stage/root" "$stage/tmp" "$stage/go/pkg/mod"
	chmod 1777 "$stage/tmp"
	for tool in sh mkdir cp chown chmod; do
		path=$(command -v "$tool")
		cp -L "$path" "$stage/bin/$tool"
		# Every library the tool loads, at the path the loader looks for it.
		for lib in $(ldd "$path" | awk '$1 ~ /^\// {print $1} $3 ~ /^\// {print $3}'); do
			cp -L --parents "$lib" "$stage/"
		done
	done
	buildah $flags copy --quiet "$ctr" "$stage" / >/dev/null
	buildah $flags copy --quiet "$ctr" "$(go env GOROOT)" /usr/local/go >/dev/null
	buildah $flags config \
		--env PATH=/usr/local/go/bin:/bin --env HOME=/root --env GOPATH=/go \
		--env GOTOOLCHAIN=local --env GOPROXY=off --env GOSUMDB=off --env GOFLAGS=-mod=readonly \
		--label org.opencontainers.image.title=herd-builder \
		--label "org.opencontainers.image.description=Go $(go env GOVERSION) and a POSIX sh, copied from the build machine" \
		"$ctr"
	buildah $flags commit --quiet "$ctr" "$builder" >/dev/null
fi

volumes="-v $(go env GOMODCACHE):/go/pkg/mod:ro"
if [ -n "${HERD_GOCACHE:-}" ]; then
	mkdir -p "$HERD_GOCACHE"
	volumes="$volumes -v $HERD_GOCACHE:/root/.cache/go-build"
fi
revision=${REVISION:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
# shellcheck disable=SC2086
exec buildah $flags bud --format docker $run_flags $volumes \
	--build-arg "BUILDER_IMAGE=$builder" \
	--build-arg "VERSION=${VERSION:-dev}" \
	--build-arg "REVISION=$revision" \
	--build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
	-t "$tag" -f "$root/deploy/Dockerfile" "$root"
