"""suite.md: every figure in one table with the published figure it compares to (its anchor), then the steps' status;
and `derive`, the figures that need two steps' results."""

from __future__ import annotations

import statistics

from benchmarks.gpu_suite.record import (
    HfResult,
    Lmeval,
    OwbRunResult,
    Params,
    PathResult,
    ServeResult,
    SmokeResult,
    SuiteRecord,
    VllmResult,
    VllmScope,
)

# Figures of shared/reference/perf_anchors.md (section numbers) and shared/tools/gpu_vllm/README.md, per model label.
ANCHORS: dict[str, dict[str, str]] = {
    "bandwidth": {"": "H100 SXM spec 3,350 GB/s; D2D copy on the lent H100 2,800–3,000 GB/s (§0, §3.1)"},
    "limit": {"1.5b": "1,085 tok/s at 3.35 TB/s, 939 at 2.9 TB/s (§3.2)",
              "7b": "237 tok/s at 3.35 TB/s, 205 at 2.9 TB/s (§3.2)"},
    "hf.batch1.plain_generate": {"1.5b": "34 tok/s, 3.2% (H100, transformers 5.17, dynamic cache; §2.3)",
                                 "7b": "39 tok/s, 16% (§2.3)"},
    "hf.batch1.owb_static": {"1.5b": "static cache + compile `generate`: 204 tok/s, 19% (§2.3); owb target ≥ 70%",
                             "7b": "static cache + compile `generate`: 119 tok/s, 50% (§2.3); owb target ≥ 70%"},
    "hf.batched.plain_generate": {"1.5b": "`generate` 128→128: 1,165 at bs 32, 3,542 at bs 128 (§2.3)",
                                  "7b": "`generate` 128→128: 1,194 at bs 32, 5,378 at bs 128 (§2.3)"},
    "hf.batched.owb_static": {"": "owb target ≥ 3× plain `generate` at batch 64"},
    "hf.batched.owb_continuous": {"1.5b": "transformers CB, 512 req 128→128: 0.5B 2,614, 3,331 with CUDA graphs "
                                          "(§2.3)",
                                  "7b": "transformers CB, 512 req 128→128: 1,636, 1,933 with CUDA graphs (§2.3)"},
    "vllm.batch1.raw": {"1.5b": "~410 tok/s (vLLM 0.26, H100; gpu_vllm README); 183 on A100 (§2.1)",
                        "7b": "~162 tok/s (vLLM 0.26, H100; gpu_vllm README); 84 on A100 (§2.1)"},
    "vllm.batch1.owb": {"": "owb target: within 3% of raw vLLM"},
    "vllm.batched.raw": {"1.5b": "256 GSM8K chat × 256 tok in 2.2 s ≈ 29,800 tok/s (vLLM 0.26, H100; gpu_vllm "
                                 "README)",
                         "7b": "256 GSM8K chat × 256 tok in 2.8 s ≈ 23,400 tok/s (gpu_vllm README)"},
    "vllm.batched.owb": {"": "owb target: within 3% of raw vLLM"},
    "owb_run": {"": "no published figure; compare engine start + raw vLLM generation above"},
    "lmeval.vllm": {"": "users saw lm-eval's vLLM >2× slower than vLLM direct until batch_size=auto (lm-eval #2445; "
                        "§1.8)"},
    "lmeval.hf": {"": "lm-eval hf: length-sorted padded batches, no static cache or compile (§1.8)"},
    "smoke": {"": "token-identical to plain greedy `generate`"},
}

PATH_NAMES = {
    "hf.batch1.plain_generate": "transformers `generate` (dynamic cache)",
    "hf.batch1.owb_static": "owb static path: compiled decode loop",
    "hf.batch1.owb_continuous": "owb continuous batching",
    "vllm.batch1.raw": "raw vLLM `LLM.generate`",
    "vllm.batch1.owb": "owb vLLM backend",
    "hf.batched.plain_generate": "transformers `generate` (dynamic cache, length-sorted)",
    "hf.batched.owb_static": "owb static path (static cache + compile)",
    "hf.batched.owb_continuous": "owb continuous batching",
    "vllm.batched.raw": "raw vLLM `LLM.generate`, all in flight",
    "vllm.batched.owb": "owb vLLM backend, all in flight",
}


def derive(doc: SuiteRecord, run_model: str) -> None:
    """Figures that need two steps: the batch-1 limit (bandwidth / bytes per decode step) and each batch-1 path's
    share of it, lm-eval's vLLM against raw vLLM, lm-eval's hf against plain `generate`."""
    bandwidth = doc.bandwidth.bytes_per_s if doc.bandwidth else None
    results: list[HfResult | VllmResult] = [*doc.hf.values(), *doc.vllm.values()]
    for result in results:
        read = result.decode_bytes
        if not bandwidth:
            continue
        limit = bandwidth / (read.weights + read.kv)
        result.batch1_limit_tok_s = limit
        for _, path in result.batch1.paths() if result.batch1 else ():
            if path.output_tokens_per_s is not None:
                path.share_of_limit = path.output_tokens_per_s / limit
    lmeval = doc.lmeval or Lmeval()
    vllm, hf = doc.vllm.get(run_model), doc.hf.get(run_model)
    raw = vllm.batched.raw if vllm and vllm.batched else None
    plain = hf.batched.plain_generate if hf and hf.batched else None
    if lmeval.vllm and raw and raw.output_tokens_per_s and lmeval.vllm.output_tokens_per_s:
        lmeval.vllm.vs_raw_vllm = lmeval.vllm.output_tokens_per_s / raw.output_tokens_per_s
    if lmeval.hf and plain and plain.output_tokens_per_s and lmeval.hf.output_tokens_per_s:
        lmeval.hf.vs_plain_generate = lmeval.hf.output_tokens_per_s / plain.output_tokens_per_s


def anchor(kind: str, label: str = "") -> str:
    """The anchor figure for a row kind and model label."""
    found = ANCHORS.get(kind, {})
    return found.get(label) or found.get("", "")


def number(value: float | None, digits: int = 0) -> str:
    """A figure with thousands separators ('—' for none)."""
    return "—" if value is None else f"{value:,.{digits}f}"


def path_row(kind: str, label: str, result: PathResult, setting: str, notes: list[str]) -> str:
    """One measured path as a table row: tok/s, seconds, and its share of the limit or ratio to its baseline."""
    name = PATH_NAMES[kind]
    if result.skipped is not None or result.error is not None:
        return f"| {name} | {label} | {setting} | — | — | {result.skipped or result.error} | {anchor(kind, label)} |"
    if result.share_of_limit is not None:
        notes.append(f"{100 * result.share_of_limit:.0f}% of the limit")
    if result.speedup_vs_plain is not None:
        notes.append(f"{result.speedup_vs_plain:.2f}× plain")
    if result.fast_path_kept is False:
        notes.append("**fell back** (the fast path switched itself off)")
    return f"| {name} | {label} | {setting} | {number(result.output_tokens_per_s, 1)} | " \
           f"{number(result.wall_s, 2)} | {'; '.join(notes)} | {anchor(kind, label)} |"


def intro(doc: SuiteRecord, p: Params) -> list[str]:
    """The title, the workload in words, and the table's head."""
    lines = [f"# owb GPU suite — {doc.device_name or '?'} ({doc.mode})", "",
             f"{p.prompts} GSM8K chat prompts (owb's gsm8k prompt, {p.tokenizer}; prompt tokens "
             f"{p.prompt_tokens}) × {p.output_len} output tokens (EOS masked), greedy; batch "
             f"{p.batch}; batch 1: the first prompt × {p.batch1_tokens} tokens. Random weights of the "
             "cards' shapes. tok/s = output tokens / wall seconds (batch 1: prefill included).", ""]
    if doc.mode == "cpu-smoke":
        lines += ["CPU smoke: tiny shapes on a CPU, so the anchors (H100 figures) are not comparable.", ""]
    lines += ["| path | model | setting | output tok/s | s | vs | anchor |", "|---|---|---|---:|---:|---|---|"]
    if doc.bandwidth:
        bw = doc.bandwidth
        lines.append(f"| memory bandwidth ({bw.device}) | — | {bw.method} | — | — | {number(bw.gb_s, 1)} GB/s "
                     f"| {anchor('bandwidth')} |")
    return lines


def engine_rows(doc: SuiteRecord, p: Params) -> list[str]:
    """Each model's paths, batch 1 then batched, hf before vLLM, with the batch-1 decode limit first."""
    lines: list[str] = []
    for scope in ("batch1", "batched"):
        for label in p.models:
            for engine, result in (("hf", doc.hf.get(label)), ("vllm", doc.vllm.get(label))):
                if result is None:
                    continue
                if scope == "batch1" and isinstance(result, HfResult) and result.batch1_limit_tok_s:
                    read = result.decode_bytes
                    lines.append(f"| batch-1 decode limit (bandwidth / {number(read.weights / 1e9, 2)} GB weights "
                                 f"+ KV) | {label} | context {read.context} | "
                                 f"{number(result.batch1_limit_tok_s, 0)} | — | — | {anchor('limit', label)} |")
                setting = (f"batch 1, {p.batch1_tokens} tok" if scope == "batch1" else
                           f"{p.prompts} prompts, batch {p.batch}" if engine == "hf" else
                           f"{p.prompts} prompts in flight")
                found = result.batch1 if scope == "batch1" else result.batched
                for path, measured in found.paths() if found else ():
                    notes = ([f"{found.owb_overhead_pct:+.1f}% time vs raw"]
                             if isinstance(found, VllmScope) and path == "owb" else [])
                    lines.append(path_row(f"{engine}.{scope}.{path}", label, measured, setting, notes))
    return lines


def owb_run_row(run: OwbRunResult | None, p: Params) -> list[str]:
    """The timed `owb run`."""
    if not run:
        return []
    detail = run.error or (f"{run.n} samples, {number(run.output_tokens)} output tokens; "
                           f"engine {number(run.engine_output_tokens_per_s, 1)} tok/s over "
                           f"{number(run.engine_wall_s, 2)} s")
    return [f"| `owb run` end to end (process start to exit, vLLM) | {p.run_model} | "
            f"{p.prompts} GSM8K, --max-new-tokens {p.output_len} | "
            f"{number(run.end_to_end_output_tokens_per_s, 1)} | {number(run.wall_s, 1)} | "
            f"{detail} | {anchor('owb_run')} |"]


def lmeval_rows(lmeval: Lmeval | None, p: Params) -> list[str]:
    """lm-eval's two backends against raw vLLM and plain `generate`."""
    lines: list[str] = []
    found = lmeval or Lmeval()
    for backend, result, base in (("vllm", found.vllm, "raw vLLM"), ("hf", found.hf, "plain generate")):
        if result is None:
            continue
        ratio = result.vs_raw_vllm if backend == "vllm" else result.vs_plain_generate
        note = result.error or (f"{ratio:.2f}× {base}" if ratio else "")
        setting = "batch_size auto" if backend == "vllm" else f"batch {result.batch}"
        lines.append(f"| lm-eval {'VLLM' if backend == 'vllm' else 'HFLM'} `generate_until` | {p.run_model} | "
                     f"{setting} | {number(result.output_tokens_per_s, 1)} | {number(result.wall_s, 2)} "
                     f"| {note} | {anchor('lmeval.' + backend)} |")
    return lines


def smoke_rows(smoke: SmokeResult | None) -> list[str]:
    """Each smoke path: token-identical, or where it first differs."""
    if smoke is None:
        return []
    lines: list[str] = []
    for path, result in smoke.paths.items():
        verdict = result.error or ("token-identical" if result.identical else
                                   f"**differs** on {', '.join(result.mismatched or [])}")
        first = result.first_difference
        if first:
            verdict += (f" (first at {first.request} token {first.position}: {first.got} vs "
                        f"{first.want}{', an EOS that min_new_tokens masks' if first.got_eos else ''})")
        if result.fast_path_kept is False:
            verdict += "; **fell back**"
        lines.append(f"| smoke: {path} | {smoke.model} ({smoke.device}) | {smoke.prompts} prompts × "
                     f"{smoke.tokens} tok | — | — | {verdict} | {anchor('smoke')} |")
    return lines


SERVE_FIGURES = (("output_throughput", "output tok/s", 1), ("duration", "duration s", 2),
                 ("mean_ttft_ms", "mean TTFT ms", 1), ("p99_ttft_ms", "p99 TTFT ms", 1),
                 ("median_tpot_ms", "TPOT p50 ms", 2), ("median_itl_ms", "ITL p50 ms", 2),
                 ("completed", "completed", 0), ("total_output_tokens", "output tokens", 0))


def _median(values: list[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.median(found) if found else None


def serve_rows(serve: ServeResult | None) -> list[str]:
    """`owb bench` beside `vllm bench serve` on one server: per level, each figure's median over the runs."""
    if serve is None:
        return []
    lines = ["", f"`owb bench --backend openai` beside `vllm bench serve` on one `vllm serve` of {serve.card} "
                 f"(random weights; server start {number(serve.server_start_s, 1)} s): {serve.input_len} tokens in, "
                 f"{serve.output_len} out, EOS ignored, greedy, {serve.num_prompts} prompts per run, the tools "
                 "alternated; medians over the runs.", "",
             "| in flight | figure | vllm bench serve | owb bench | owb / vLLM |", "|---:|---|---:|---:|---:|"]
    for level in serve.levels:
        for key, name, digits in SERVE_FIGURES:
            ours = _median([getattr(f, key) for f in level.owb])
            theirs = _median([getattr(f, key) for f in level.vllm])
            ratio = f"{ours / theirs:.2f}" if ours is not None and theirs else "—"
            lines.append(f"| {level.max_concurrency} | {name} | {number(theirs, digits)} | {number(ours, digits)} "
                         f"| {ratio} |")
    return lines


def status_table(doc: SuiteRecord) -> list[str]:
    """Each step's status, seconds and reason."""
    lines = ["", "| step | status | s | reason |", "|---|---|---:|---|"]
    for step, status in doc.steps.items():
        lines.append(f"| {step} | {status.status} | {number(status.wall_s, 1)} | {status.reason or ''} |")
    return lines


def markdown(doc: SuiteRecord) -> str:
    """suite.md: every figure with its anchor, then the steps' status."""
    p = doc.params
    if p is None:
        raise ValueError("suite.md needs the suite's params")
    lines = [*intro(doc, p), *engine_rows(doc, p), *owb_run_row(doc.owb_run, p), *lmeval_rows(doc.lmeval, p),
             *smoke_rows(doc.smoke), *serve_rows(doc.serve), *status_table(doc)]
    return "\n".join(lines) + "\n"
