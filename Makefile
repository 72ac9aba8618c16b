# vo: every set-up step lives here, so a fresh machine needs only `make demo` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# uv must use this machine's Python: managed Python downloads are not reachable.
export UV_PYTHON_DOWNLOADS := never
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := python3 -m uv
endif
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help install uv generate lint format test demo bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on this machine kind)
# Python never caches it, and every `vo` start would recompile rich, grpc, protobuf, ... (about
# a second per command). --inexact keeps the bench group when present.
$(VENV)/.installed: uv pyproject.toml uv.lock clients/pyproject.toml $(wildcard services/*/pyproject.toml)
	$(UV) sync --all-packages --locked --inexact --compile-bytecode
	$(BIN)/python -m compileall -q clients/src services/*/src
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed node_modules/.installed  ## install Python packages (uv) and buf (npm)

generate: install  ## regenerate the protobuf stubs into clients/src
	$(BIN)/python protos/generate.py

format: install  ## format Python and protos
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	node_modules/.bin/buf format -w

lint: install  ## ruff, mypy (strict on the client), buf lint and format
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services/*/src clients/src/vo/cli
	$(BIN)/mypy --strict clients/src/vo/client clients/src/vo/events.py
	node_modules/.bin/buf lint
	node_modules/.bin/buf format --diff --exit-code

test: install lint  ## install, lint, run the whole suite
	$(BIN)/pytest $(PYTEST_ARGS)

demo: install  ## generate a landscape sample and reframe it to a vertical short
	$(BIN)/vo demo --out-dir vo-demo

bench: install  ## benchmarks against the ffmpeg CLI and MoviePy (installs both for comparison)
	@command -v ffmpeg >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null)
	$(UV) sync --all-packages --locked --inexact --compile-bytecode --group bench
	$(BIN)/python bench/reframe.py
	$(BIN)/python bench/render.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/tts.py
	$(BIN)/python bench/subtitles.py
	$(BIN)/python bench/script.py
	$(BIN)/python bench/audio.py
	$(BIN)/python bench/captions.py
	$(BIN)/python bench/store.py

clean:  ## remove the virtual environment, node_modules and demo output
	rm -rf $(VENV) node_modules vo-demo
