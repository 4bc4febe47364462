# readlit: `make demo` and `make test` are all a fresh machine needs (each creates .venv when missing).
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest
# make eval DATASET=synthetic|hdtf|mead [CKPT=path/to/a2v/last.ckpt]; without CKPT: the newest a2v run on DATASET
DATASET ?= synthetic
# make serve [CKPT=path/to/a2v/last.ckpt]: the checkpoint make demo trains unless CKPT is given
SERVE_CKPT = $(or $(CKPT),logs/demo/a2v/checkpoints/last.ckpt)
DATA ?= hdtf
ARGS ?=
# make bench-gpu [SIZE=ltx2b|tiny]
SIZE ?= ltx2b

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,optuna,serve,stream]"
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || $(MAKE) --no-print-directory chromium
	touch $@

install: $(STAMP) ## create .venv and install readlit with its test, sweep, serve and stream extras (and Chromium)

chromium: ## Debian's Chromium and its driver, for the browser test (apt-get, as root)
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	else echo "note: install chromium and chromium-driver to run tests/browser (it skips without them)"; fi

test: $(STAMP) ## default test tier (no slow, no GPU tests)
	$(PYTEST) -m "not slow and not gpu"

test-slow: $(STAMP) ## slow tier: sweeps, Optuna search, long runs (CI runs it after `make test`)
	$(PYTEST) -m "slow and not gpu"

test-gpu: $(STAMP) ## GPU tier (needs CUDA)
	$(PYTEST) -m gpu

demo: $(STAMP) ## the pipeline on synthetic talking heads, on this CPU; report in logs/demo/
	$(PY) experiments/demo/run.py $(ARGS)

bench-gpu: ## every GPU check in one call, paper scale, random weights (SIZE=tiny: CPU); experiments/bench/README.md
	SIZE=$(SIZE) PY=$(PY) bash experiments/bench/gpu.sh

gpu-wheels: $(STAMP) ## fetch the wheels bench-gpu installs on a GPU machine without a registry, into .whl/
	mkdir -p .whl
	grep -v '^#' experiments/bench/gpu_wheels.txt | xargs $(PY) -m pip download --quiet --no-deps --only-binary=:all: \
		--python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
		--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl
	$(PY) -m pip wheel --quiet --no-deps antlr4-python3-runtime==4.9.3 -w .whl

serve: $(STAMP) ## the API and the page on http://127.0.0.1:8000: make serve [CKPT=a2v.ckpt] (default: make demo's)
	@test -f "$(SERVE_CKPT)" || { echo "error: no checkpoint at $(SERVE_CKPT): run make demo first, or make serve CKPT=path/to/a2v.ckpt" >&2; exit 2; }
	$(PY) -m readlit.serve ckpt=$(SERVE_CKPT) $(ARGS)

mutation: $(STAMP) ## mutation check of the core math: every one-line bug in tests/mutation must fail a test (~10 min)
	$(PY) tests/mutation/run_mutants.py

lint: $(STAMP) ## ruff
	$(VENV)/bin/ruff check src tests

train-speechae: $(STAMP) ## stage 1 as in the paper (whisper-tiny, HDTF cache)
	$(PY) -m readlit.train experiment=speechae $(ARGS)

preprocess: $(STAMP) ## build a training cache: make preprocess DATA=hdtf RAW=/path/to/HDTF
	@test -n "$(RAW)" || { echo "error: set RAW=path/to/the/raw/download (and DATA=hdtf or mead)" >&2; exit 2; }
	$(PY) -m readlit.preprocess data=$(DATA) raw_dir=$(RAW) $(ARGS)

eval: $(STAMP) ## generate the test split and score it: make eval DATASET=mead [CKPT=a2v.ckpt] [ARGS="frames=[121,457,1017]"]
	$(PY) -m readlit.evaluate ckpt=$(or $(CKPT),latest) data=$(DATASET) $(ARGS)

clean-logs: ## remove logs/
	rm -rf logs

.PHONY: help install chromium test test-slow test-gpu bench-gpu gpu-wheels mutation demo serve lint train-speechae preprocess eval clean-logs
