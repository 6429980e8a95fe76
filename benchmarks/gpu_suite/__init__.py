"""The GPU evidence in one command: memory bandwidth, plain `generate` vs owb's hf fast paths, raw vLLM vs owb's vLLM
backend, a timed `owb run`, lm-eval's backends and a token-identity smoke, on GSM8K chat prompts; suite.json (the typed
`record.SuiteRecord`) and suite.md with each figure's published anchor.

One module per step under `steps/`; `orchestrate` runs each in a child process under its time limit and rewrites the
results after every step. Entry point: scripts/gpu_suite.sh (which runs `python -m benchmarks.gpu_suite`).
"""
