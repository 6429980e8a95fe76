#!/usr/bin/env bash
# CI regression job: each job's run is checked against its committed baseline in results/baselines/ with owb's
# paired test, so a change that moves a score fails CI with the test's verdict.
#   smollm2-scitldr   a real instruct model (SmolLM2-135M-Instruct, GGUF from PyPI) generating on 40 real SciTLDR
#                     abstracts: the end-to-end check of the engine, prompts and ROUGE
#   gsm8k, math500,   stored completions (results/baselines/completions/, written by scripts/make_completions.py)
#   humaneval         rescored by today's code: a scorer, extractor or prompt-format change that moves a maths or
#                     code score fails here
# `scripts/regression.sh --refresh` rewrites the baselines instead (from a clean tree, so each records the commit
# that made it; commit the result). JOBS="gsm8k humaneval" runs a subset; OWB overrides the owb command.
set -euo pipefail
cd "$(dirname "$0")/.."
OWB=${OWB:-.venv/bin/owb}
DATA=${OWB_DATA_DIR:-../shared/data}
JOBS=${JOBS:-smollm2-scitldr gsm8k math500 humaneval}
BASELINES=results/baselines
refresh=0
if [ "${1:-}" = "--refresh" ]; then
    refresh=1
    if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
        echo "error: the tree has uncommitted changes; commit them first, so each baseline records the commit that made it" >&2
        exit 2
    fi
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0
for job in $JOBS; do
    if [ "$job" = smollm2-scitldr ]; then
        baseline=$BASELINES/smollm2-135m-instruct-scitldr
        $OWB run --model smollm2-135m-instruct --tasks scitldr --data-dir "$DATA" --limit 40 --max-new-tokens 64 \
            --batch-size 8 --output "$out/$job"
    else
        baseline=$BASELINES/replayed-$job
        completions=$BASELINES/completions/$job.jsonl  # one line for each of the task's first N documents
        $OWB run --model tiny-qwen2 --backend replay --replay "$completions" --tasks "$job" --data-dir "$DATA" \
            --limit "$(grep -c . "$completions")" --output "$out/$job"
    fi
    run=$(ls -d "$out/$job"/*/)
    if [ "$refresh" = 1 ]; then
        rm -rf "$baseline" && cp -r "$run" "$baseline" && rm -f "$baseline/.owb.lock"
        echo "baseline refreshed: $baseline"
    elif ! $OWB check --baseline "$baseline" --candidate "$run" --max-drop 1.0 --alpha 0.05 \
            --summary "${GITHUB_STEP_SUMMARY:-/dev/null}"; then
        failed=1
    fi
done
exit $failed
