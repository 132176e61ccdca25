# crossbuild: every target names an intent and delegates to invoke (tasks.py),
# which resolves flags > environment > config.toml > defaults and parallelises
# itself; nothing here keeps state between targets, so `make -j` is safe.
#
# Variables (OpenIM names), passed through the environment:
#   PLATFORMS="linux/amd64 linux_arm64"  BINS=api,push  IMAGES=api
#   REGISTRY_PREFIX=host:port/ns  VERSION=v1.2.3  BASE_IMAGE=...  GO_IMAGE=...
#   MODE=prebuilt|multistage  VERIFY=0  V=1 (echo commands)  CONFIG=path/to/config.toml

SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV ?= .venv
INVOKE := $(VENV)/bin/invoke
STAMP := $(VENV)/.crossbuild-installed
CONFIG_FLAG := $(if $(CONFIG),--config $(CONFIG),)
SERVICES := $(notdir $(patsubst %/,%,$(dir $(wildcard examples/imdemo/cmd/*/main.go))))

# The bench extra (matplotlib) draws `make bench`'s chart; lint type-checks bench/, so every target installs it.
# scripts/venv.py says what pip is doing while it works (a line in place, or timestamped lines in CI).
$(STAMP): pyproject.toml
	@$(PYTHON) scripts/venv.py $(VENV) '.[dev,bench]'
	@touch $@

.PHONY: help venv
help: ## Show this help (instant: installs nothing)
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target> [VAR=value]\n\nTargets:\n"} \
	  /^[a-zA-Z0-9_.%-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@if [ ! -f $(STAMP) ]; then \
	  printf '\nNote: $(VENV) is not set up yet. The first target other than help, tools and clean (or `make venv`)\n'; \
	  printf 'creates it and pip-installs crossbuild with invoke, docker, colorama, PyYAML, pytest, ruff, mypy\n'; \
	  printf 'and matplotlib (a minute or two). Then `$(VENV)/bin/invoke --list` lists every task.\n'; \
	else \
	  printf '\nEvery task and its flags: $(VENV)/bin/invoke --list, $(VENV)/bin/invoke --help TASK\n'; \
	fi

venv: $(STAMP) ## Create .venv and install crossbuild (the first target does it by itself)

## --- build -------------------------------------------------------------------
.PHONY: build
build: $(STAMP) ## Build the services for the host platform (BINS= filters)
	@$(INVOKE) build $(CONFIG_FLAG)

.PHONY: build.multiarch multiarch
build.multiarch: $(STAMP) ## Cross-compile every service for every platform (PLATFORMS=)
	@$(INVOKE) build.multiarch $(CONFIG_FLAG)

multiarch: build.multiarch ## Alias of build.multiarch

build.%: $(STAMP) ## Build one service for the host platform: make build.api
	@$(INVOKE) build --services $* $(CONFIG_FLAG)

## --- images ------------------------------------------------------------------
.PHONY: image image.multiarch push.multiarch manifest setup registry.up registry.down
image: $(STAMP) ## Build the images for the host platform and load them into docker
	@$(INVOKE) image --load $(CONFIG_FLAG)

image.multiarch: $(STAMP) ## Build every image for every platform and push one index per service
	@$(INVOKE) image.multiarch $(CONFIG_FLAG)

push.multiarch: image.multiarch ## Same as image.multiarch (pushing is part of it)

image.%: $(STAMP) ## Build and push one service's multi-arch image: make image.api
	@$(INVOKE) image.multiarch --services $* $(CONFIG_FLAG)

manifest: $(STAMP) ## Merge the per-arch digests in build/digests/ into one index per service
	@$(INVOKE) manifest $(CONFIG_FLAG)

setup: $(STAMP) ## Check docker/buildx, register binfmt, create and bootstrap the builder
	@$(INVOKE) setup $(CONFIG_FLAG)

registry.up: $(STAMP) ## Start the embedded local registry (data under build/registry)
	@$(INVOKE) registry.up $(CONFIG_FLAG)

registry.down: $(STAMP) ## Stop the embedded local registry
	@$(INVOKE) registry.down $(CONFIG_FLAG)

## --- checks ------------------------------------------------------------------
.PHONY: verify doctor tools test test.unit lint clean
verify: $(STAMP) ## Verify the pushed images: platforms, configs, binaries, smoke runs
	@$(INVOKE) verify $(CONFIG_FLAG)

doctor: $(STAMP) ## Check the environment and print the fix for each problem
	@$(INVOKE) doctor $(CONFIG_FLAG)

tools: ## Install and start dockerd, registry, QEMU binfmt, skopeo, buildx, BuildKit (root, Debian)
	@bash scripts/tools.sh

test: $(STAMP) ## Run every test: unit and integration against the real tools
	@$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

test.unit: $(STAMP) ## Run the fast unit tests only
	@$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff + mypy
	@$(VENV)/bin/ruff check crossbuild tests bench tasks.py
	@$(VENV)/bin/ruff format --check crossbuild tests bench tasks.py
	@$(VENV)/bin/mypy
	@$(VENV)/bin/mypy bench

clean: ## Remove build/ and the virtualenv's install stamp
	@rm -rf build
	@rm -f $(STAMP)

.PHONY: go-image audit
go-image: $(STAMP) ## Build the offline Go builder image for multistage mode and push it
	@$(INVOKE) go-image $(CONFIG_FLAG)

audit: $(STAMP) ## Audit the example compose file's images for missing architectures (COMPOSE=)
	@$(INVOKE) audit --compose $(or $(COMPOSE),examples/imdemo/docker-compose.yml) $(CONFIG_FLAG)

.PHONY: resolve
resolve: $(STAMP) ## Pin this project's images in deployment files to the last publish's digests: FILES="a.yaml b.yml"
	@$(INVOKE) resolve "$(FILES)" $(if $(OUT),--output $(OUT),) $(CONFIG_FLAG)

.PHONY: bundle bundle.load
bundle: $(STAMP) ## Offline image bundles for air-gapped servers, one per platform: build/bundles/*.tar.gz (PLATFORMS=)
	@$(INVOKE) bundle $(CONFIG_FLAG)

bundle.load: $(STAMP) ## Verify and import a bundle: ARCHIVE=file.tar.gz [REGISTRY=host:port] (default: docker daemon)
	@$(INVOKE) bundle.load $(ARCHIVE) $(if $(REGISTRY),--registry $(REGISTRY),)

.PHONY: fuzz
fuzz: $(STAMP) ## Fuzz the input parsers for minutes (FUZZ_EXAMPLES=20000 per target; CI runs a short pass)
	@HYPOTHESIS_PROFILE=long $(VENV)/bin/python -m pytest tests/fuzz -q $(PYTEST_ARGS)

.PHONY: bench bench.tiny bench.sweep bench.transfer
bench: $(STAMP) ## Benchmark against the emulated path, an OpenIM-style loop, ko and the go build floor, cold, warm and after one-line edits (SIZE=full, BENCH_ARGS=...)
	@$(VENV)/bin/python bench/run.py --size $(or $(SIZE),full) --out build/bench --profile $(BENCH_ARGS)

bench.transfer: $(STAMP) ## Offline bundle create and bundle.load of 1 GiB of random layers against skopeo copy: peak RSS and throughput (SIZE=1GiB)
	@$(VENV)/bin/python bench/run.py --cases t --transfer-size $(or $(SIZE),1GiB) --out build/bench-transfer $(BENCH_ARGS)

bench.tiny: $(STAMP) ## The benchmark on a tiny monorepo (what CI runs through the tests)
	@$(VENV)/bin/python bench/run.py --size tiny --cases a,d,f --out build/bench $(BENCH_ARGS)

bench.sweep: $(STAMP) ## Growth sweep: crossbuild vs the go build floor, cold, over services {3,12,48} x platforms {1,3,5} (~20 min; SIZE=tiny, BENCH_ARGS=...)
	@$(VENV)/bin/python bench/sweep.py --size $(or $(SIZE),full) --out build/bench-sweep $(BENCH_ARGS)
