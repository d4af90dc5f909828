# Two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Tests and CI run single-threaded: 2 OpenMP threads beside any other process are 5-100x slower.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: demo test lint install bench gpu-check clean

$(BIN)/weightinfo: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(BIN)/weightinfo

install: $(BIN)/weightinfo

demo: install
	$(BIN)/weightinfo demo

lint: install
	$(BIN)/ruff check weightinfo tests benchmarks experiments
	$(BIN)/ruff format --check weightinfo tests benchmarks experiments

test: lint
	$(BIN)/python -m pytest -n 2 -q

bench: install
	$(BIN)/python benchmarks/curvature.py

# CUDA vs CPU, the curvature tests on CUDA, GPU timings (< 8 min on an H100); exits 0 without CUDA.
gpu-check: install
	OMP_NUM_THREADS=4 $(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
