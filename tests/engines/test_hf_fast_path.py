"""The transformers fast paths: the compiled batch-1 decode loop, the static cache (padded batches) and continuous
batching give the plain path's tokens and stops; each hands on what it lacks, and a failure loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.config.cards import Sampling
from harness.engines.base import GenRequest
from harness.engines.hf import continuous as hf_continuous
from harness.engines.hf.backend import HFBackend
from harness.engines.tiny import RECIPES
from tests.contract import check_run
from tests.helpers import build_backend, run_cli

pytestmark = pytest.mark.slow  # real engines or subprocesses: `make test` runs these, `make test-fast` does not


def backend(family: str, batch_size: int, fast_path: str) -> HFBackend:
    built = build_backend("hf", f"tiny-{family}", batch_size=batch_size, fast_path=fast_path)
    assert isinstance(built, HFBackend)
    return built


def questions(n: int, max_new: int = 24, stop: tuple[str, ...] = ()) -> list[GenRequest]:
    """Prompts of several lengths, one decoding setting (a single group)."""
    return [GenRequest(f"k{i}", f"Question {i}: what is {i} plus {3 * i}? " * (1 + i % 4), Sampling(), max_new, i,
                       stop) for i in range(n)]


@pytest.mark.parametrize("batch_size", [1, 4])
def test_the_static_cache_path_gives_the_plain_path_tokens(batch_size: int) -> None:
    """`generate` on the static cache at batch 1, and 7 requests at batch 4: a full batch and one of 3 padded to 4
    (the padding row is dropped), one shape."""
    exact = [GenRequest(f"x{i}", f"prompt number {i}", Sampling(), 24, i, min_new_tokens=24) for i in range(2)]
    requests = questions(7) + exact
    fast, plain = backend("qwen3", batch_size, "static"), backend("qwen3", batch_size, "off")
    fast.lean = False  # the batch-1 decode loop has its own test
    assert "static KV cache" in fast.describe().args["fast_path"] and plain.describe().args["fast_path"] == "off"
    got = {g.key: (g.token_ids, g.text, g.output_tokens) for g in fast.generate(requests)}
    want = {g.key: (g.token_ids, g.text, g.output_tokens) for g in plain.generate(requests)}
    assert got == want and len(got) == 9 and all(got[f"x{i}"][2] == 24 for i in range(2))


@pytest.mark.parametrize("family", sorted(RECIPES))
def test_the_batch_1_decode_loop_gives_the_plain_path_tokens_and_stops(family: str) -> None:
    requests = questions(3, max_new=40) + [GenRequest(f"x{i}", f"exact {i}", Sampling(), 30, i, min_new_tokens=30)
                                           for i in range(2)]
    fast, plain = backend(family, 1, "static"), backend(family, 1, "off")
    got = {g.key: g for g in fast.generate(requests)}
    want = {g.key: g for g in plain.generate(requests)}
    for key, g in want.items():
        assert (got[key].token_ids, got[key].text, got[key].finish_reason) == (g.token_ids, g.text, g.finish_reason)
    assert got["x0"].output_tokens == 30 and got["k0"].timings.scope == "request"
    assert 0 < got["k0"].timings.ttft_s <= got["k0"].timings.e2e_s
    # A token the model emits early stands in for EOS: both paths stop on it, at the same place.
    fast.eos_ids = plain.eos_ids = [want["k0"].token_ids[9]]
    got = {g.key: g for g in fast.generate(requests[:3])}
    want = {g.key: g for g in plain.generate(requests[:3])}
    assert {k: (g.token_ids, g.finish_reason) for k, g in got.items()} == {
        k: (g.token_ids, g.finish_reason) for k, g in want.items()}
    assert got["k0"].output_tokens <= 10 and got["k0"].finish_reason == "stop"
    assert "compiled decode loop" in fast.describe().args["fast_path"]


def test_the_decode_step_compiles_to_one_graph_without_breaks() -> None:
    """torch.compile (inductor on CPU here; CUDA graphs on a GPU) traces the step once for prompts of any length."""
    import torch._dynamo

    from harness.engines.hf.decode import StaticDecoder

    fast, plain = backend("qwen2", 1, "static"), backend("qwen2", 1, "off")
    fast.decoder = StaticDecoder(fast.model, compile_step=True)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    requests = questions(3, max_new=20)
    got = {g.key: g.token_ids for g in fast.generate(requests)}
    assert got == {g.key: g.token_ids for g in plain.generate(requests)}
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert not torch._dynamo.utils.counters["graph_break"] and fast.lean


@pytest.mark.parametrize("family", ["qwen2", "qwen3_moe", "hunyuan_v1_dense", "ernie4_5"])
def test_continuous_batching_gives_the_plain_path_outputs(family: str) -> None:
    requests = questions(6) + [GenRequest(f"x{i}", "", Sampling(), 16, i, (), 16, tuple(range(100 + i, 140)))
                               for i in range(3)]  # a second group at exact lengths (EOS off)
    fast = {g.key: g for g in backend(family, 4, "continuous").generate(requests)}
    plain = {g.key: g for g in backend(family, 4, "off").generate(requests)}
    assert fast.keys() == plain.keys() == {r.key for r in requests}
    for key, want in plain.items():
        got = fast[key]
        assert (got.token_ids, got.text, got.finish_reason, got.prompt_tokens) == (
            want.token_ids, want.text, want.finish_reason, want.prompt_tokens)
        assert got.timings.scope == "request" and want.timings.scope == "batch"
        assert got.timings.ttft_s is not None and got.timings.e2e_s is not None and got.timings.queue_s is not None
        assert 0 <= got.timings.queue_s <= got.timings.ttft_s <= got.timings.e2e_s
        assert len(got.timings.itl_s) == got.output_tokens - 1 and got.timings.tpot_s == pytest.approx(sum(got.timings.itl_s) / len(got.timings.itl_s))
    assert all(fast[f"x{i}"].output_tokens == 16 for i in range(3))


def test_what_continuous_batching_lacks_takes_the_static_path() -> None:
    fast = backend("qwen2", 4, "continuous")
    gens = list(fast.generate(questions(4, stop=("plus",))))
    assert {g.timings.scope for g in gens} == {"batch"}
    penalised = [GenRequest("p", "a prompt", Sampling(repetition_penalty=1.3), 8, 0),
                 GenRequest("q", "another prompt", Sampling(repetition_penalty=1.3), 8, 1)]
    assert {g.timings.scope for g in fast.generate(penalised)} == {"batch"}


def test_a_failure_midway_hands_the_unfinished_requests_to_the_plain_path(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = hf_continuous.generate_continuous

    def breaks_after_two(*args: Any, **kwargs: Any) -> Iterator[hf_continuous.Finished]:
        for n, finished in enumerate(real(*args, **kwargs)):
            if n == 2:
                raise hf_continuous.ContinuousBatchingFailed("out of KV blocks")
            yield finished

    monkeypatch.setattr(hf_continuous, "generate_continuous", breaks_after_two)
    fast = backend("qwen2", 4, "continuous")
    requests = questions(6)
    gens = list(fast.generate(requests))
    assert sorted(g.key for g in gens) == sorted(r.key for r in requests), "every request exactly once"
    assert [g.timings.scope for g in gens].count("request") == 2
    err = capsys.readouterr().err
    assert "continuous batching failed" in err and "out of KV blocks" in err and "the 4 unfinished" in err
    assert "continuous" not in fast.describe().args["fast_path"], "switched off for the rest of the run"
    plain = {g.key: g.token_ids for g in backend("qwen2", 4, "off").generate(requests)}
    assert {g.key: g.token_ids for g in gens} == plain


def test_an_unknown_fast_path_is_refused() -> None:
    from harness.core.errors import UserError

    with pytest.raises(UserError, match="backend hf: option fast_path: Input should be 'auto', 'static'"):
        backend("qwen2", 4, "turbo")


@pytest.mark.parametrize("fast_path", ["static", "continuous"])
def test_owb_run_on_a_fast_path_writes_the_plain_runs_samples(fast_path: str, tmp_path: Path) -> None:
    outputs = {}
    for name in (fast_path, "off"):
        run_dir = run_cli("--model", "tiny-qwen3", "--tasks", "gsm8k", "--data", "fixture", "--limit", "5",
                          "--batch-size", "4", "--fast-path", name, "--output", str(tmp_path / name))
        record = check_run(run_dir)
        assert record["backend"]["args"]["fast_path"] != "off" or name == "off"
        lines = (run_dir / "samples" / "gsm8k.jsonl").read_text().splitlines()
        outputs[name] = {(s["doc_id"], s["raw_output"]) for s in map(json.loads, lines)}
    assert outputs[fast_path] == outputs["off"] and len(outputs["off"]) == 5
