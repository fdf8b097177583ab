# photosearch: `make run` brings up the whole mesh, `make test` checks everything.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed
PACKAGES := libs/common libs/devstack services/catalog services/search services/embedder \
            services/fallback gateway
PYPROJECTS := $(addsuffix /pyproject.toml,$(PACKAGES))
# What the dev venv installs: catalog with its command-line and demo extras.
comma := ,
INSTALL_SPECS := $(patsubst services/catalog,'services/catalog[cli$(comma)demo]',$(PACKAGES))
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install system-deps protos protos-check api-types api-types-check lint fmt typecheck \
        check test test-unit \
        test-integration test-e2e run import demo images bench bench-embed bench-search \
        bench-chaos bench-scale restore-drill bench-import bench-copies bench-gateway bench-quality bench-rerank bench-fallback bench-soak clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): $(PYPROJECTS) constraints.txt requirements-dev.txt $(wildcard gateway/web/package-lock.json)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch is pinned to the CPU build in constraints.txt (any other spec pulls CUDA).
	$(PIP) install -q -c constraints.txt -r requirements-dev.txt $(addprefix -e ,$(INSTALL_SPECS))
	# geffnet declares torchvision, which it never imports and which breaks transformers.
	$(PIP) install -q -c constraints.txt --no-deps geffnet
	# Browser-side packages (onnxruntime-web) the gateway serves; no build step.
	if [ -f gateway/web/package-lock.json ]; then npm --prefix gateway/web ci --no-audit --no-fund; fi
	touch $@

install: $(STAMP) ## create .venv with every service and the dev tools

system-deps: ## Debian packages the tests need: Chromium + driver (browser), promtool (alert rules)
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && command -v promtool >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium chromium-driver \
	  && $$SUDO apt-get install -y -q --no-install-recommends prometheus; }

protos: $(STAMP) ## regenerate the protobuf/gRPC code from protos/
	$(PY) tools/gen_protos.py

protos-check: protos ## fail when the generated code is stale
	@git diff --exit-code --stat -- libs/common/src/photosearch \
	  && test -z "$$(git status --porcelain -- libs/common/src/photosearch)" \
	  || { echo "generated protobuf code is stale: run 'make protos' and commit"; exit 1; }

api-types: $(STAMP) ## regenerate the HTTP API's TypeScript types from the gateway's OpenAPI document
	$(PY) tools/api_types.py

api-types-check: $(STAMP) ## fail when the committed TypeScript types of the API are stale
	$(PY) tools/api_types.py --check

lint: $(STAMP) ## ruff (lint + format check)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP) ## fix what ruff can (imports, lint autofixes) and format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: $(STAMP) ## mypy --strict on our code
	$(VENV)/bin/mypy libs/common/src/photosearch/common libs/devstack services gateway tools

check: $(STAMP) lint typecheck ## the quick loop before a commit: lint, types, unit tests without model builds
	$(VENV)/bin/pytest -q tests/unit -m "not slow"

test-unit: $(STAMP) ## unit tests (fakes, no network), model builds included
	$(VENV)/bin/pytest -q tests/unit

test-integration: $(STAMP) system-deps ## integration tests: real Postgres+pgvector, NATS, gRPC servers
	$(VENV)/bin/pytest -q tests/integration

test-e2e: $(STAMP) system-deps ## end-to-end tests across the mesh and headless Chromium
	$(VENV)/bin/pytest -q tests/e2e

test: $(STAMP) system-deps protos-check api-types-check lint typecheck ## everything CI runs
	$(VENV)/bin/pytest -q tests

DEMO ?= 1
EMBEDDERS ?= 1
SEARCH ?= 1
run: $(STAMP) ## start Postgres, NATS, every service and the gateway (Ctrl-C stops all); first run: demo catalog, photo search on (DEMO=0: none); EMBEDDERS=N SEARCH=M: replicas
	PHOTOSEARCH_DEMO=$(DEMO) $(PY) -m photosearch_devstack run --embedders $(EMBEDDERS) --search $(SEARCH)

import: $(STAMP) ## import a folder of images into the running mesh: make import DIR=path/to/photos
	$(PY) -m photosearch_catalog.cli.importer --catalog 127.0.0.1:50051 "$(DIR)"

demo: $(STAMP) ## load the demo catalog into the running mesh
	$(PY) -m photosearch_catalog.cli.demo --catalog 127.0.0.1:50051

images: ## build one container image per service (needs a Docker engine)
	@for svc in catalog search embedder fallback; do \
	  docker build -f services/$$svc/Dockerfile -t photosearch-$$svc:dev . || exit 1; done
	docker build -f gateway/Dockerfile -t photosearch-gateway:dev .

bench: bench-embed bench-search bench-import bench-copies bench-scale bench-gateway bench-fallback bench-quality ## every benchmark (slow)

bench-embed: $(STAMP) ## embedder throughput/latency: eager vs ONNX fp32 vs int8 vs EMBED_RUNTIME=auto
	$(PY) bench/embed.py
	$(PY) bench/embed_runtimes.py
	$(PY) bench/embed_decode.py
	$(PY) bench/embed_local.py --photos ../shared/datasets/smvs_dvd_covers/query/canon --count 12 --rounds 5
	$(PY) bench/int8_overflow.py --models tiny-dinov2,efficientnet-lite0,dinov2-small

bench-search: $(STAMP) ## pgvector search latency/recall at 100k and 1M vectors
	$(PY) bench/search.py

bench-import: $(STAMP) ## import 1,000 generated images, then re-run (adds nothing)
	$(PY) bench/import_images.py

bench-gateway: $(STAMP) ## POST /search through the gateway vs search gRPC directly
	$(PY) bench/gateway.py

bench-copies: $(STAMP) ## copies caught without the model (hashes, then the pixel check): misses per transform
	$(PY) bench/copies.py
	$(PY) bench/copy_check.py

bench-chaos: $(STAMP) ## the soak under faults (kill embedder, a search replica, catalog; freeze NATS; restart Postgres), with invariant checks
	$(PY) bench/chaos.py

bench-scale: $(STAMP) ## indexing and search throughput: 1 embedder + 1 search replica vs 2 + 2, side by side
	$(PY) bench/scale_out.py

restore-drill: $(STAMP) ## back up, lose and restore catalog (pg_dump, then point in time); rebuild search; check every vector
	$(PY) -m photosearch_devstack.restore_drill

bench-quality: $(STAMP) ## retrieval quality on ../shared/datasets through the real mesh
	$(PY) bench/quality.py

bench-rerank: $(STAMP) ## local re-ranking: batched vs per-pair matcher, and the Search RPC
	$(PY) bench/rerank.py --rpc --rpc-memory 64,0
	$(PY) bench/rerank_threads.py

bench-fallback: $(STAMP) ## fallback photo preparation and WebDetect against a local fake Vision
	PYTHONPATH=. $(PY) bench/fallback.py

bench-soak: $(STAMP) ## bounded soak of mixed search + ingest
	$(PY) bench/soak.py

clean: ## remove the venv and local data
	rm -rf $(VENV) .data
