# The two commands of the README:
#   make dashboard   set up a local venv and open the Voila dashboard gallery on 127.0.0.1 (embedded data)
#   make test        set up the venv (+ Debian's chromium for the browser tests) and run every test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8866
export WORKBENCH_CACHE ?= $(CURDIR)/.cache/models

.PHONY: setup browser prepare dashboard test benchmarks lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps "quantus>=0.6,<0.7"
	touch $@

setup: $(VENV)/.installed

# Debian's chromium + chromedriver for the Voila browser tests (a test tool's own browser download is never used).
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  SUDO=$$(if [ "$$(id -u)" != 0 ]; then echo sudo; fi); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver; fi

# Train (once, then cached in $WORKBENCH_CACHE) the default models the dashboards use.
prepare: setup
	$(PY) -m widgets.prepare

# Voila with the culling of abandoned pages' kernels (widgets/serve.py says how and why)
dashboard: prepare
	$(PY) -m widgets.serve --port $(PORT)

test: setup browser
	WORKBENCH_SMOKE=1 $(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider

benchmarks: setup
	$(PY) benchmarks/relabel.py
	$(PY) benchmarks/tracking.py

lint: setup
	$(VENV)/bin/ruff check workbench widgets tests benchmarks
