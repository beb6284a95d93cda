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

# Outputs already in the DVC remote (.dvc/config: ../dvc-remote beside the checkout) are pulled, not recomputed;
# what a run computes is pushed back for the next clone.
repro: setup
	$(RUN) dvc pull --allow-missing
	$(RUN) dvc repro
	$(RUN) dvc push

test: setup
	$(RUN) pytest

bench: setup
	$(RUN) python pipelines/bench_embed.py
	$(RUN) python pipelines/bench_index.py
