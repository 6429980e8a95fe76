#!/usr/bin/env bash
# CI regression job: a real tiny instruct model (SmolLM2-135M-Instruct, GGUF from PyPI) on real SciTLDR,
# checked against the committed baseline with a paired test. `scripts/regression.sh --refresh` rewrites the
# baseline instead (commit the result).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DATA=${OWB_DATA_DIR:-../shared/data}
BASELINE=results/baselines/smollm2-135m-instruct-scitldr
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$BIN/owb" run --model smollm2-135m-instruct --tasks scitldr --data-dir "$DATA" --limit 40 --max-new-tokens 64 \
    --batch-size 8 --output "$out"
run=$(ls -d "$out"/*/)
if [ "${1:-}" = "--refresh" ]; then
    rm -rf "$BASELINE" && mkdir -p "$(dirname "$BASELINE")" && cp -r "$run" "$BASELINE"
    echo "baseline refreshed: $BASELINE"
    exit 0
fi
"$BIN/owb" check --baseline "$BASELINE" --candidate "$run" --max-drop 1.0 --alpha 0.05 \
    --summary "${GITHUB_STEP_SUMMARY:-/dev/null}"
