# Every target installs what it needs into .venv first, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint compile bench clean

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

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check driftloop components operator tests bench
	bash manifests/lint.sh

compile: setup
	@echo "compile: the KFP pipeline lands with the Kubeflow Pipelines issue"; exit 1

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf .driftloop examples/data bench/results/*.json
