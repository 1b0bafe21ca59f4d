# The README's commands. Everything lives in .venv; only python3 is needed to start.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8888

.PHONY: demo test test-fast test-gpu lint lab bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# PyTorch and TensorFlow (the CPU builds), Spark with DuckDB and tpchgen-cli, the serving extra (LoadGen, FastAPI,
# uvicorn) and the cluster managers (dask-jobqueue, dask-gateway) only where they are needed: the tests of the notebooks that use them.
TORCH := $(VENV)/.torch-stamp
$(TORCH): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[torch,serving,managers,tensorflow,spark]"
	touch $(TORCH)

## demo: set up, run the quickstart headless, print the HTML report's path
demo: $(STAMP)
	$(BIN)/labkit run notebooks/00_quickstart.ipynb --out reports

CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Debian's Chromium for tests/test_browser.py (Playwright drives it; never `playwright install`).
# On a shared machine another apt may hold the dpkg lock: wait for it (up to 10 minutes).
APT := $(SUDO) apt-get -o DPkg::Lock::Timeout=600
$(CHROMIUM):
	$(APT) update -qq && $(APT) install -y -qq --no-install-recommends chromium

## lint: ruff (lint and format check) and the import-linter contract of labkit's layers
lint: $(STAMP)
	$(BIN)/ruff check labkit tests benchmarks
	$(BIN)/ruff format --check labkit tests benchmarks
	$(BIN)/lint-imports

## test: set up, lint, and run the whole suite with labkit's doctests (installs chromium with apt when missing)
test: lint $(CHROMIUM) $(TORCH)
	$(BIN)/python -m pytest

## test-fast: lint and the suite without the real-browser tests
test-fast: lint $(TORCH)
	$(BIN)/python -m pytest -m "not browser"

## test-gpu: the tests of the GPU path (CuPy, dask-cuda, NVML, notebook 02 end to end); needs the gpu extra and a CUDA GPU
# The gpu extra holds dask and distributed at the release dask-cuda pins (pyproject.toml).
test-gpu: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[gpu,dev]"
	$(BIN)/python -m pytest -m gpu -rs tests/test_gpu.py tests/test_devices.py

# JupyterLab's Dask sidebar pointed at the dashboard of a Lab started in a kernel (labkit.cluster.dashboard).
SIDEBAR := $(VENV)/share/jupyter/lab/settings/overrides.d/labkit-dask-sidebar.json
$(SIDEBAR): $(STAMP) labkit/cluster/dashboard.py
	$(BIN)/python -c 'from labkit.cluster.dashboard import write_sidebar_settings; write_sidebar_settings("$(VENV)/share/jupyter/lab/settings")'

## lab: JupyterLab on 127.0.0.1 with a token (printed in the log); its Dask sidebar follows the Lab's dashboard
lab: $(STAMP) $(SIDEBAR)
	$(BIN)/jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) $(if $(filter 0,$(shell id -u)),--allow-root) notebooks

## bench: the performance measurements in benchmarks/
bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) reports results .pytest_cache
