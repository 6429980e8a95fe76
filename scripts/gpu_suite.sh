#!/usr/bin/env bash
# The GPU evidence in one device call: benchmarks/gpu_suite/ (bandwidth; the 1.5B/7B shapes through transformers and
# owb's hf fast paths; raw vLLM beside owb's vLLM backend; a timed `owb run`; lm-eval's vLLM and hf backends; a CUDA
# token-identity smoke), results in <out>/suite.json and <out>/suite.md. This wrapper only sets up the interpreter.
#
# On the lent GPU (the device tool; it goes back after 30 s idle and takes everything with it, so make the calls
# back to back). Here, once, from the repository root:
#   bash ../shared/tools/gpu_vllm/prepare.sh   # vLLM 0.26 + its packages in pieces .gpu_vllm/c1..cN (prints N)
#   bash scripts/gpu_suite.sh --prepare        # .gpu_suite/: lm-eval + math-verify wheels, GSM8K test, the tokenizer
# Then the device calls (run, nvidia-h100-x1):
#   carry [".gpu_vllm/c1"]  command: mkdir -p /tmp/vst && cp .gpu_vllm/c1/* /tmp/vst/          (c2 .. cN-1 alike)
#   carry [".gpu_vllm/cN"]  command: mkdir -p /tmp/vst && cp .gpu_vllm/cN/* /tmp/vst/ && bash /tmp/vst/final.sh
#   carry [".gpu_suite"]    timeout_s 600
#                           command: bash scripts/gpu_suite.sh --out /tmp/suite; cp /tmp/suite/* $OUT/
# If its last lines name steps not finished (out of the 420 s budget), at once, on the same warm machine (the
# results merge into /tmp/suite/suite.json; a machine given back meanwhile needs the staging again):
#   carry [".gpu_suite"]    timeout_s 600
#                           command: bash scripts/gpu_suite.sh --out /tmp/suite --steps STEP,STEP; cp /tmp/suite/* $OUT/
# Then here: mkdir -p results/bench/<gpu-name> && cp <files_at>/suite.* results/bench/<gpu-name>/
#
# CI and this CPU machine: scripts/gpu_suite.sh --cpu-smoke --out DIR   (tiny shapes, a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
  mkdir -p .git/info
  grep -qx '/.gpu_suite/' .git/info/exclude 2>/dev/null || echo '/.gpu_suite/' >> .git/info/exclude
  rm -rf .gpu_suite && mkdir -p .gpu_suite/wheels .gpu_suite/data/gsm8k .gpu_suite/tokenizer
  # What the GPU image and the gpu_vllm staging lack: lm-eval's model modules, and math-verify for owb's GSM8K scorer.
  python3 -m pip download -q --no-deps --only-binary=:all: -d .gpu_suite/wheels lm_eval==0.4.13 \
    more-itertools==11.2.1 math-verify==0.9.0 latex2sympy2_extended==1.11.0 antlr4-python3-runtime==4.13.2
  cp ../shared/data/gsm8k/test.jsonl .gpu_suite/data/gsm8k/
  cp ../shared/data/tokenizers/deepseek-r1-distill-qwen-7b/* .gpu_suite/tokenizer/
  du -sh .gpu_suite
  exit 0
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && python=.venv/bin/python
if [ -d .gpu_suite/wheels ] && [[ " $* " != *" --cpu-smoke "* ]]; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/owb-site \
    .gpu_suite/wheels/*.whl
  export PYTHONPATH=/tmp/owb-site${PYTHONPATH:+:$PYTHONPATH}
fi
[ -d /tmp/vsite ] && export PYTHONPATH=/tmp/vsite${PYTHONPATH:+:$PYTHONPATH}  # vLLM staged by gpu_vllm/final.sh
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
exec "$python" -m benchmarks.gpu_suite "$@"
