"""`owb bench`: a served model under `vllm bench serve`'s load model (requests in flight behind a semaphore, arrivals
at a request rate with burstiness, warm-ups excluded, goodput against objectives), or an in-process engine in waves;
exact-length token-id prompts or a run's own prompts and output lengths; every GPU the engine uses metered; a sweep
for the highest rate or concurrency meeting the objectives; the roofline of batch-1 decode."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from harness.config.cards import ModelCard, load_card
from harness.core.errors import ConfigError
from harness.core.hashing import stable_hash
from harness.core.stats import per
from harness.engines.base import Backend, EngineRequest
from harness.engines.load import LoadShape, Slo
from harness.engines.registry import backend_class, make_backend
from harness.engines.stream import Served
from harness.measure.cost import gpu_usd
from harness.measure.drive import EngineRunner, ServedRunner
from harness.measure.energy import EnergyMeter, GPUSelection, engine_gpus, idle_watts, joules_per_token
from harness.measure.environment import environment, gpu_devices
from harness.measure.load import Item, LevelSpec, attainment, level_record, random_workload, run_workload
from harness.measure.roofline import RooflineError, roofline
from harness.measure.sweep import bisect
from harness.records.base import BackendInfo, new_id, utc_now
from harness.records.bench import BenchCost, BenchLevel, BenchModel, BenchParams, BenchRecord, Roofline, SweepResult
from harness.records.store import write_bench

Runner = ServedRunner | EngineRunner


@dataclass(frozen=True)
class BenchOptions:
    """What `owb bench` was asked for (vLLM's names where `vllm bench serve` has the knob)."""

    model: str
    backend: str = "hf"
    input_len: int = 128
    output_len: int = 128
    concurrency: tuple[int | None, ...] = (1, 8, 64)  # --max-concurrency levels (None: no limit)
    request_rates: tuple[float | None, ...] = (None,)  # --request-rate levels (None: inf, all at once)
    burstiness: float = 1.0
    waves: bool = False  # batches with a barrier instead of the semaphore (in-process engines always)
    num_prompts: int | None = None  # requests per level (None: 64, or every sample of --from-run)
    num_warmups: int | None = None  # warm-up requests per level, excluded (None: the level's concurrency)
    goodput: Slo | None = None
    metric_percentiles: tuple[float, ...] = (50.0, 90.0, 99.0)
    temperature: float = 0.0
    from_run: str | None = None
    sweep: Literal["rate", "concurrency"] | None = None
    sweep_repeats: int = 3
    sweep_steps: int = 5
    sweep_attainment: float = 0.9
    gpu_hourly_usd: float | None = None
    idle_s: float = 2.0  # idle baseline per metered GPU, before the levels (0: none)
    output: str = "runs/bench"
    random_weights: bool = False
    seed: int = 0
    dtype: str | None = None
    tp: int | None = None
    pp: int | None = None
    dp: int | None = None
    backend_args: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """The combinations that cannot run, each a ConfigError."""
        if self.input_len < 1 or self.output_len < 2 or (self.num_prompts is not None and self.num_prompts < 1):
            raise ConfigError("--input-len >= 1, --output-len >= 2 and --num-prompts >= 1 are needed")
        if any(c is not None and c < 1 for c in self.concurrency) or not self.concurrency or not self.request_rates:
            raise ConfigError("--max-concurrency levels must be >= 1")
        if self.sweep and self.goodput is None:
            raise ConfigError("--sweep finds the highest load meeting the objectives: give --goodput ttft:MS ...")
        if self.waves and (None in self.concurrency or any(r is not None for r in self.request_rates)):
            raise ConfigError("--waves runs batches of --max-concurrency requests: no --request-rate, a limit each")


@dataclass
class Session:
    """One bench's open engine and everything its levels share."""

    opts: BenchOptions
    backend: Backend
    runner: Runner
    gpus: GPUSelection
    gpu_count: int
    idle: dict[str, float]
    rng: np.random.Generator
    workload: list[Item] | None  # a run's requests (--from-run), else fresh random prompts per level
    vocab: tuple[int, frozenset[int]] = (0, frozenset())
    levels: list[BenchLevel] = field(default_factory=list)

    def prompts(self, tag: str, count: int) -> list[Item]:
        """Fresh exact-length random prompts (no prefix cache can help); a run's requests for --from-run."""
        if self.workload is not None:
            return self.workload[:count]
        vocab, special = self.vocab
        if vocab == 0:
            raise ConfigError("random prompts need the model's tokenizer on this machine (the card's files)")
        return random_workload(self.rng, tag, count, self.opts.input_len, self.opts.output_len, vocab, special)

    def warm_up(self, load: LoadShape, count: int) -> None:
        """Requests under the level's load, excluded from everything; random prompts of the workload's lengths."""
        if count < 1:
            return
        if self.workload is not None:
            median_in = int(statistics.median(i.input_len or 32 for i in self.workload))
            vocab, special = self.vocab
            items = (random_workload(self.rng, "warmup", count, median_in, 8, vocab, special) if vocab
                     else self.workload[:count])
        else:
            items = self.prompts("warmup", count)
        self.runner.run(items, load, self.mode, self.rng)

    @property
    def mode(self) -> Literal["load", "waves"]:
        """The level mode: waves for an in-process engine or when asked, else vLLM's load model."""
        return "waves" if self.opts.waves or self.runner.in_process else "load"

    def level(self, load: LoadShape) -> BenchLevel:
        """One level: warm-up, then the timed requests with every metered GPU's energy; recorded."""
        opts = self.opts
        count = opts.num_prompts or (len(self.workload) if self.workload is not None else 64)
        self.warm_up(load, opts.num_warmups if opts.num_warmups is not None else (load.max_concurrency or 1))
        items = self.prompts(f"c{load.max_concurrency}-r{load.request_rate}", count)
        with EnergyMeter(self.gpus, idle_watts=self.idle) as meter:  # NVML starts and stops outside the timed span
            measured, duration = self.runner.run(items, load, self.mode, self.rng)
        energy = meter.reading()
        spec = LevelSpec(self.mode, load, self.runner.scope, opts.metric_percentiles, opts.goodput)
        level = level_record(spec, measured, duration)
        usd = gpu_usd(duration, self.gpu_count, opts.gpu_hourly_usd)
        level = level.model_copy(update={
            "energy": energy, "joules_per_output_token": joules_per_token(energy.joules if energy else None,
                                                                           level.total_output_tokens),
            "net_joules_per_output_token": joules_per_token(energy.net_joules if energy else None,
                                                             level.total_output_tokens),
            "usd": usd, "usd_per_1m_output_tokens": per(usd, level.total_output_tokens, 1e6)})
        self.levels.append(level)
        return level


def _open(card: ModelCard, opts: BenchOptions) -> tuple[Backend, EngineRequest]:
    cls = backend_class(opts.backend)
    if not cls.measures_speed:
        raise ConfigError(f"owb bench cannot measure backend '{opts.backend}' (it does not run a model)")
    if not issubclass(cls, Served) and (opts.request_rates != (None,) or None in opts.concurrency):
        raise ConfigError(f"backend {opts.backend} runs in this process and takes requests in waves: "
                          "--request-rate and an unlimited --max-concurrency need a served model (--backend openai)")
    top = max((c for c in opts.concurrency if c is not None), default=None)
    request = EngineRequest(batch_size=top, dtype=opts.dtype, random_weights=opts.random_weights, tp=opts.tp,
                            pp=opts.pp, dp=opts.dp, max_model_len=opts.input_len + opts.output_len
                            if opts.from_run is None else None, prefix_caching=False)
    return make_backend(opts.backend, card, request, opts.backend_args), request


def _session(opts: BenchOptions, backend: Backend, request: EngineRequest) -> Session:
    if isinstance(backend, Served):
        runner: Runner = ServedRunner(backend, backend.endpoint(), opts.temperature)
        gpu_count = max(1, len(backend.local_gpus()))
    else:
        runner = EngineRunner(backend, opts.temperature, opts.seed)
        gpu_count = (request.tp or 1) * (request.pp or 1) * (request.dp or 1)
    gpus = engine_gpus(backend, request)
    workload = run_workload(Path(opts.from_run), opts.num_prompts) if opts.from_run else None
    session = Session(opts, backend, runner, gpus, gpu_count, {}, np.random.default_rng(opts.seed), workload,
                      backend.vocab())
    session.warm_up(LoadShape(max_concurrency=1), 1)  # load the engine's lazy paths before the idle baseline
    session.idle = idle_watts(gpus, opts.idle_s) if opts.idle_s > 0 and (gpus.ordinals or gpus.named) else {}
    return session


def _sweep(session: Session) -> SweepResult:
    """Bisect the request rate (up to the throughput of everything at once) or the concurrency (1 to the highest
    level asked for) for the highest load whose requests meet the objectives."""
    opts, slo = session.opts, session.opts.goodput
    assert slo is not None
    limit = next((c for c in opts.concurrency if c is not None), None) if opts.sweep == "rate" else None
    if opts.sweep == "rate":
        top = session.level(LoadShape(max_concurrency=limit)).request_throughput

        def probe(value: float) -> float:
            load = LoadShape(max_concurrency=limit, request_rate=value, burstiness=opts.burstiness)
            return attainment(session.level(load), slo)

        return bisect(probe, "request_rate", top / 8, top, slo.as_text(), opts.sweep_attainment, opts.sweep_repeats,
                      opts.sweep_steps)
    high = max((c for c in opts.concurrency if c is not None), default=64)
    return bisect(lambda c: attainment(session.level(LoadShape(max_concurrency=int(c))), slo), "max_concurrency",
                  1, max(high, 2), slo.as_text(), opts.sweep_attainment, opts.sweep_repeats, opts.sweep_steps)


def bench(opts: BenchOptions) -> Path:
    """Run the levels (and the sweep) and write <output>/<bench_id>/bench.json; returns that file. A roofline the
    measurement contradicts is an error raised after bench.json is written without it."""
    opts.check()
    card = load_card(opts.model)
    started = time.perf_counter()
    backend, request = _open(card, opts)
    startup_s = time.perf_counter() - started
    sweep: SweepResult | None = None
    session: Session | None = None
    try:
        described = backend.describe()
        session = _session(opts, backend, request)
        if opts.sweep:
            sweep = _sweep(session)
        else:
            for rate in opts.request_rates:
                for c in opts.concurrency:
                    session.level(LoadShape(max_concurrency=c, request_rate=rate, burstiness=opts.burstiness))
    finally:
        if session is not None:
            session.runner.close()
        backend.close()
    assert session is not None
    roof, refused = _roofline(described, session, opts)
    path = _write(opts, card, described, session, startup_s, roof, sweep)
    if refused is not None:
        raise RooflineError(f"{refused} (the levels are saved in {path})")
    return path


def _roofline(described: BackendInfo, session: Session, opts: BenchOptions) -> tuple[Roofline | None,
                                                                                     RooflineError | None]:
    """The roofline where the weights are in this process (a served model's memory is another machine's)."""
    model_dir = described.args.get("model_path")
    if session.workload is not None or not model_dir or not Path(model_dir).is_dir():
        return None, None
    try:
        return roofline(described, Path(model_dir), session.levels, opts.input_len + opts.output_len // 2), None
    except RooflineError as exc:
        return None, exc


def _write(opts: BenchOptions, card: ModelCard, described: BackendInfo, session: Session, startup_s: float,
           roof: Roofline | None, sweep: SweepResult | None) -> Path:
    bench_id = new_id(card.id, opts.backend, "bench")
    energies = [lvl.energy for lvl in session.levels if lvl.energy is not None]
    caching = described.args.get("prefix_caching")
    record = BenchRecord(
        bench_id=bench_id, created_at=utc_now(),
        model=BenchModel(id=card.id, card_hash=stable_hash(card.model_dump(mode="json")),
                         path=str(described.args.get("model_path") or described.args.get("served_model") or ""),
                         random_weights=opts.random_weights),
        backend=described, environment=environment(), params=_params(opts, session), roofline=roof,
        levels=session.levels, gpus=gpu_devices(), metered_gpus=[g.uuid for g in energies[0].gpus] if energies else [],
        cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        prefix_caching=caching if isinstance(caching, bool) else False if session.runner.in_process else None,
        startup_s=startup_s, sweep=sweep,
        cost=None if opts.gpu_hourly_usd is None else BenchCost(
            gpu_hourly_usd=opts.gpu_hourly_usd, gpus=session.gpu_count, startup_s=startup_s,
            startup_usd=gpu_usd(startup_s, session.gpu_count, opts.gpu_hourly_usd)))
    path = Path(opts.output) / bench_id / "bench.json"
    write_bench(path, record)
    return path


def _params(opts: BenchOptions, session: Session) -> BenchParams:
    workload = session.workload
    return BenchParams(
        input_len=None if workload is not None else opts.input_len,
        output_len=None if workload is not None else opts.output_len,
        num_prompts=len(workload) if workload is not None else opts.num_prompts or 64,
        concurrency=[c or 0 for c in opts.concurrency], ignore_eos=True, seed=opts.seed, mode=session.mode,
        warmup=(f"{opts.num_warmups}" if opts.num_warmups is not None else "as many as the level's concurrency")
        + " requests per level, fresh random prompts, excluded",
        request_rates=["inf" if r is None else r for r in opts.request_rates], burstiness=opts.burstiness,
        num_warmups=opts.num_warmups, temperature=opts.temperature,
        goodput=opts.goodput.as_text() if opts.goodput else None, metric_percentiles=list(opts.metric_percentiles),
        from_run=opts.from_run, gpu_hourly_usd=opts.gpu_hourly_usd)
