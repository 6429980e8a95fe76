"""lm-evaluation-harness tasks inside owb (`--tasks lmeval:NAME`): lm-eval loads the data and builds each prompt
(few-shot, chat template as its --apply_chat_template does), owb generates and splits off the reasoning, and
lm-eval's own filters and metrics score the answer. Needs the `lmeval` extra."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from harness.config.base import DataSource, Mode
from harness.config.cards import ModelCard
from harness.config.taskspec import MetricSpec
from harness.core.errors import ConfigError, DataError
from harness.core.hashing import stable_hash
from harness.core.log import warn
from harness.lmeval.load import check_config, find_task, lm_eval_version, load_task
from harness.lmeval.scorer import LmevalScorer
from harness.scoring.base import ScoreInfo, Scorer
from harness.tasks.data import Document, TaskData
from harness.tasks.prompts import ChatRenderer, Prompt, template_kwargs

# lm-eval metrics known to be 0/1 per sample (shown as percentages, and counted as correct answers in the cost);
# lm-eval states no range, so others (BLEU, ROUGE, F1) are shown raw and never counted as correct answers
FRACTIONS = frozenset({"exact_match", "acc", "acc_norm", "math_verify"})


def lmeval_task(name: str, include: list[Path]) -> LmevalTask:
    """The lm-eval task `lmeval:NAME` (from --lmeval-include DIRs first, then lm-eval's own), checked to be one
    generate_until task that owb can run, with its data loaded."""
    version = lm_eval_version()
    manager, entry = find_task(name, include)
    if entry.cfg is not None:
        check_config(name, entry.cfg)
    task = load_task(manager, name, entry.cfg or {})
    check_config(name, {"output_type": task.OUTPUT_TYPE, "unsafe_code": task.config.unsafe_code,
                        "repeats": task.config.repeats})
    return LmevalTask(name=name, task=task, version=version, scores=_mean_scores(name, task))


@dataclass
class LmevalTask:
    """An lm-eval generate_until task behind owb's Task protocol; documents are its evaluation split by index."""

    name: str
    task: Any  # lm_eval.api.task.ConfigurableTask
    version: str
    scores: tuple[ScoreInfo, ...]
    _prompts: tuple[tuple[Any, ...], dict[str, Prompt]] | None = field(default=None, repr=False)

    @property
    def metrics(self) -> Sequence[MetricSpec]:
        """The mean of every `METRIC,FILTER` score."""
        return [MetricSpec(name=info.name) for info in self.scores]

    @property
    def primary_metric(self) -> str:
        """The task's first metric under its first filter."""
        return self.scores[0].name

    def spec_hash(self) -> str:
        """Hash of lm-eval's version and the task's whole config (functions by their source)."""
        return stable_hash({"lm_eval": self.version, "config": _canonical(self.task.dump_config())})

    def documents(self, source: DataSource, data_dir: Path | None, limit: int | None) -> TaskData:
        """The evaluation split as lm-eval loaded it (process_docs applied); --data/--data-dir do not apply."""
        docs = [Document(doc_id=str(i), fields=dict(doc), target=self.task.doc_to_target(doc))
                for i, doc in islice(enumerate(self.task.eval_docs), limit)]
        if not docs:
            raise DataError(f"task {self.name}: lm-eval found no documents")
        location, revision, sha = _provenance(self.task.config)
        return TaskData(docs=docs, fewshot=[], source=f"lm-eval {self.version}", location=location,
                        revision=revision, file_sha256=sha)

    def prompt(self, doc: Document, data: TaskData, card: ModelCard, mode: Mode, renderer: ChatRenderer) -> Prompt:
        """lm-eval's context for the document, with its `until` strings as stops.

        Few-shot examples are drawn as lm-eval draws them: one generator seeded once, the documents in order,
        so every document's prompt is built on the first call and kept."""
        key = (card.model_dump_json(), mode, id(renderer), id(data))
        if self._prompts is None or self._prompts[0] != key or doc.doc_id not in self._prompts[1]:
            self._prompts = key, self._build_prompts(data, card, mode, renderer)
        return self._prompts[1][doc.doc_id]

    def scorer(self) -> Scorer:
        """lm-eval's filters and metrics."""
        return LmevalScorer(self.task, self.version, self.scores)

    def score_infos(self) -> Sequence[ScoreInfo]:
        """One per `METRIC,FILTER`, direction from lm-eval's higher_is_better."""
        return self.scores

    def protocol_samples(self, protocol: str) -> int | None:
        """owb's named protocols cover none of lm-eval's tasks."""
        return None

    def _build_prompts(self, data: TaskData, card: ModelCard, mode: Mode, renderer: ChatRenderer) -> dict[str, Prompt]:
        from lm_eval.defaults import DEFAULT_OTHER_SEED

        self.task.set_fewshot_seed(DEFAULT_OTHER_SEED)
        until = self.task.config.generation_kwargs.get("until") or ()
        stop = (until,) if isinstance(until, str) else tuple(until)
        template = _chat_template(card, mode, renderer) if card.chat else None
        prompts = {}
        for doc in data.docs:
            ctx = self.task.fewshot_context(
                doc.fields, num_fewshot=self.task.config.num_fewshot or 0,
                system_instruction=card.system_prompt if card.chat else None, apply_chat_template=card.chat,
                fewshot_as_multiturn=card.chat, chat_template=template, gen_prefix=self.task.doc_to_prefix(doc.fields))
            if not isinstance(ctx, str):
                raise ConfigError(f"task {self.name}: lm-eval built several contexts per document; owb needs one")
            prompts[doc.doc_id] = Prompt(text=ctx, stop=stop)
        return prompts


def _chat_template(card: ModelCard, mode: Mode, renderer: ChatRenderer) -> Callable[..., str]:
    """lm-eval's chat_template callable, rendered by the backend with the card's thinking switch; an assistant
    prefix (lm-eval's gen_prefix, add_generation_prompt=False) follows the generation prompt."""

    def render(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        chat = [dict(m) for m in messages]
        prefix = chat.pop()["content"] if not add_generation_prompt and chat[-1]["role"] == "assistant" else ""
        if card.thinking.kind == "prompt_flag":
            last = max(i for i, m in enumerate(chat) if m["role"] == "user")
            flag = card.thinking.on_flag if mode == "on" else card.thinking.off_flag
            chat[last]["content"] = f"{chat[last]['content']} {flag}"
        return renderer.render_chat(chat, template_kwargs(card, mode)) + prefix

    return render


def _mean_scores(name: str, task: Any) -> tuple[ScoreInfo, ...]:
    """`METRIC,FILTER` for every metric lm-eval aggregates by a mean (owb's metrics are means of sample scores)."""
    from lm_eval.api.metrics import mean

    aggregation, higher = task.aggregation(), task.higher_is_better()
    means = [m for m in aggregation if aggregation[m] is mean]
    skipped = [m for m in aggregation if aggregation[m] is not mean]
    if not means:
        raise ConfigError(f"{name}: no metric of it is a mean over samples ({', '.join(skipped)}); owb reports means")
    if skipped:
        warn(f"{name}: skipping {', '.join(skipped)} (lm-eval aggregates them over the corpus, not by a mean)")
    return tuple(ScoreInfo(f"{m},{f.name}", higher_is_better=bool(higher.get(m, True)),
                           scale="percent" if m in FRACTIONS else "raw", binary=m in FRACTIONS)
                 for f in task._filters for m in means)


def _provenance(config: Any) -> tuple[str, str | None, str | None]:
    """Location (dataset, config, split and local files), revision and, for one local file, its sha256."""
    split = config.test_split or config.validation_split
    kwargs = config.dataset_kwargs or {}
    files = kwargs.get("data_files")
    local = files.get(split) if isinstance(files, dict) else files
    location = ":".join(str(p) for p in (config.dataset_path, config.dataset_name, split) if p)
    if local:
        location += f" ({local})"
    sha = None
    if isinstance(local, str) and Path(local).is_file():
        sha = hashlib.sha256(Path(local).read_bytes()).hexdigest()
    return location, kwargs.get("revision"), sha


def _canonical(value: Any) -> Any:
    """A config made hashable across processes: functions become their source code."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if callable(value):
        try:
            return inspect.getsource(value)
        except (OSError, TypeError):
            return getattr(value, "__qualname__", type(value).__qualname__)
    return value
