# Two entry points for newcomers: `make repro` (the main job) and `make test`.
# Both create .venv from pyproject.toml first; nothing else on the machine is assumed.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# Models are only ever loaded from local paths; this makes any accidental hub access fail fast.
RUN := PATH=$(abspath $(BIN)):$$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: setup repro test bench
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

repro: setup
	$(RUN) dvc repro

test: setup
	$(RUN) pytest

bench: setup
	$(RUN) python pipelines/bench_embed.py
	$(RUN) python pipelines/bench_index.py
