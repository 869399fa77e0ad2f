# make run   build herd, then run herd.yaml: the shop (it builds bin/shop itself)
# make test  install what is missing, then gofmt, vet, staticcheck and the race-enabled tests
# make lint  vet and staticcheck only;  make bench  bench/run.sh
.PHONY: build run test lint bench

# Go lives here on a fresh machine, even when a non-login shell lacks it in PATH.
export PATH := /usr/local/go/bin:$(PATH)

build:
	go build -o bin/herd ./cmd/herd
	go build -o bin/shop ./examples/shop
	go build -o bin/hello ./examples/hello

run: build
	bin/herd up -f herd.yaml

test:
	bash scripts/test.sh

lint:
	bash scripts/test.sh --lint-only

bench:
	@if [ -f bench/run.sh ]; then bash bench/run.sh; else echo "no benchmarks yet"; fi
