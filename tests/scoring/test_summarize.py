"""Summarization: owb's ROUGE equals rouge-score's own, multi-reference max, real SciTLDR runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from rouge_score import rouge_scorer

from harness.core.errors import UserError
from harness.scoring.base import ToScore
from harness.scoring.summarize import ROUGE_TYPES, SummarizeScorer, make_rouge, sentence_lines
from tests.contract import check_run
from tests.helpers import owb

PRED = "The council will turn the old depot into a library. It opens in two years."
REFS = [
    "Council votes to turn old railway depot into a library.\nThe library should open in two years.",
    "A disused depot becomes a public library, paid for by a heritage fund.",
    "Residents campaigned for a library since 2019.",
]


def _reference(refs: list[str], pred: str) -> dict[str, float]:
    """rouge-score itself: stemmer on, one sentence per line, best reference per ROUGE type."""
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    per_ref = [scorer.score(sentence_lines(r), sentence_lines(pred)) for r in refs]
    return {t: max(s[t].fmeasure for s in per_ref) for t in ROUGE_TYPES}


@pytest.mark.parametrize("refs", [REFS[:1], REFS], ids=["single-reference", "multi-reference"])
def test_scores_equal_rouge_score_on_the_same_pairs(refs: list[str]) -> None:
    scored = SummarizeScorer().score_batch([ToScore(PRED, refs if len(refs) > 1 else refs[0], {})])[0]
    expected = _reference(refs, PRED)
    for name in ROUGE_TYPES:
        assert scored.scores[name] == pytest.approx(expected[name], abs=1e-12)
    assert scored.scores["output_words"] == 15 and scored.scores["empty_rate"] == 0.0


def test_multi_reference_takes_the_best_reference_per_type() -> None:
    scorer = SummarizeScorer()
    both = scorer.score_batch([ToScore(PRED, REFS, {})])[0].scores
    for ref in REFS:
        alone = scorer.score_batch([ToScore(PRED, ref, {})])[0].scores
        assert all(both[t] >= alone[t] for t in ROUGE_TYPES)
    assert both["rouge1"] == max(scorer.score_batch([ToScore(PRED, r, {})])[0].scores["rouge1"] for r in REFS)


def test_lsum_uses_sentence_lines_and_stemming() -> None:
    assert sentence_lines("It rained. Then it stopped! Dr. Smith left.") == "It rained.\nThen it stopped!\nDr. Smith left."
    scorer = SummarizeScorer()
    stemmed = scorer.score_batch([ToScore("the runners were running", "the runner runs", {})])[0].scores
    assert stemmed["rouge1"] > 0.6  # 'running'/'runs' and 'runners'/'runner' share stems


def test_empty_answer_is_counted_and_scores_zero() -> None:
    scored = SummarizeScorer().score_batch([ToScore("   ", "a reference", {})])[0].scores
    assert scored["empty_rate"] == 1.0 and scored["rouge1"] == 0.0 and scored["output_words"] == 0


def test_missing_rouge_package_is_an_error_not_a_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rouge_score", None)
    with pytest.raises(UserError, match="needs the rouge-score package"):
        make_rouge()


def _replay_scitldr(shared_data: Path, tmp_path: Path, name: str, pick) -> dict:  # noqa: ANN001
    rows = [json.loads(x) for x in (shared_data / "scitldr" / "test.jsonl").read_text().splitlines()]
    replay = tmp_path / f"{name}.jsonl"
    replay.write_text("\n".join(json.dumps({"task": "scitldr", "doc_id": r["paper_id"], "sample_idx": 0,
                                            "output": pick(r)}) for r in rows))
    out = tmp_path / name
    result = owb("run", "--model", "tiny-qwen2", "--backend", "replay", "--replay", str(replay), "--tasks", "scitldr",
                 "--data-dir", str(shared_data), "--output", str(out))
    assert result.returncode == 0, result.stderr
    return check_run(next(out.iterdir()))["tasks"]["scitldr"]


@pytest.mark.slow
def test_first_reference_beats_the_lead_sentence_on_real_scitldr(shared_data: Path, tmp_path: Path) -> None:
    oracle = _replay_scitldr(shared_data, tmp_path, "first_reference", lambda r: r["target"][0])
    lead = _replay_scitldr(shared_data, tmp_path, "lead_sentence", lambda r: r["source"][0])
    assert oracle["n"] == lead["n"] == 618
    for name in ROUGE_TYPES:
        o, b = oracle["metrics"][name], lead["metrics"][name]
        assert o["ci95"][0] <= o["value"] <= o["ci95"][1] and b["ci95"][0] <= b["value"] <= b["ci95"][1]
        assert o["value"] > b["value"], name
    assert oracle["metrics"]["rouge1"]["ci95"][0] > lead["metrics"]["rouge1"]["ci95"][1]


@pytest.mark.slow
def test_tiny_model_on_real_scitldr(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    result = owb("run", "--model", "tiny-qwen2", "--tasks", "scitldr", "--data-dir", str(shared_data), "--limit", "20",
                 "--output", str(out))
    assert result.returncode == 0, result.stderr
    entry = check_run(next(out.iterdir()))["tasks"]["scitldr"]
    assert entry["n"] == 20 and set(ROUGE_TYPES) <= entry["metrics"].keys()
    assert entry["metrics"]["output_words"]["value"] > 0
