# Every target installs what it needs into .venv first, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint compile image bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel first: an unpinned torch would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/driftloop example --name customers -o examples/data/customers.csv
	$(VENV)/bin/driftloop run --spec examples/customers.yaml

# Two workers by default: half the suite's time is spent waiting on servers and subprocesses.
# A whole file runs on one worker, so its module-scoped servers and trained models are made once.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(PY) -m ruff check driftloop tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/hadolint Dockerfile
	bash manifests/lint.sh

compile: setup
	$(VENV)/bin/driftloop compile -o pipelines/driftloop_pipeline.yaml
	$(VENV)/bin/driftloop compile --pipeline drift-then-retrain -o pipelines/drift_then_retrain.yaml
	$(VENV)/bin/driftloop compile --components components

# The project image, tagged with the package version unless IMAGE says otherwise (needs a Docker engine).
# VARIANT=cuda builds torch for CUDA and tags <version>-cuda, the image GPU MLTrainingJobs default to.
VARIANT ?= cpu
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' driftloop/__init__.py)
IMAGE ?= ghcr.io/driftloop/driftloop:$(VERSION)$(if $(filter cuda,$(VARIANT)),-cuda)
image:
	docker build --build-arg VERSION=$(VERSION) --build-arg VARIANT=$(VARIANT) -t $(IMAGE) .

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf .driftloop examples/data bench/results/*.json
