# readlit: `make demo` and `make test` are all a fresh machine needs (each creates .venv when missing).
.DEFAULT_GOAL := help
SHELL := /bin/bash

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest
# make eval DATASET=synthetic|hdtf|mead [CKPT=path/to/a2v/last.ckpt]; without CKPT: the newest a2v run on DATASET
DATASET ?= synthetic
DATA ?= hdtf
ARGS ?=

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,optuna]"
	touch $@

install: $(STAMP) ## create .venv and install readlit with its test and sweep extras

test: $(STAMP) ## default test tier (no slow, no GPU tests)
	$(PYTEST) -m "not slow and not gpu"

test-slow: $(STAMP) ## slow tier: sweeps, Optuna search, long runs (CI runs it after `make test`)
	$(PYTEST) -m "slow and not gpu"

test-gpu: $(STAMP) ## GPU tier (needs CUDA)
	$(PYTEST) -m gpu

demo: $(STAMP) ## the pipeline on synthetic talking heads, on this CPU; report in logs/demo/
	$(PY) experiments/demo/run.py $(ARGS)

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

.PHONY: help install test test-slow test-gpu mutation demo lint train-speechae preprocess eval clean-logs
