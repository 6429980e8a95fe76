"""How a run's settings differ from what its model card recommends and from how its published claims were measured:
decoding, token budget, samples per problem, thinking mode, protocol, and the card's prompt and template as the
repository holds it now. Each difference is one named line."""

from __future__ import annotations

from typing import Any

from harness.config.cards import ModelCard, PublishedScore, load_card
from harness.config.taskspec import load_task_spec
from harness.core.errors import ConfigError
from harness.records.run import RunRecord
from harness.records.sample import split_name
from harness.report.rows import claim_mismatch
from harness.tasks.arguments import split_arguments, with_arguments

SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty", "presence_penalty")
# Card fields that decide the prompt, the template and the decoding, compared with the repository's card.
CARD_FIELDS = ("system_prompt", "chat", "chat_template_kwargs", "reasoning", "thinking", "sampling", "max_new_tokens",
               "task_max_new_tokens")


def base_name(task: str) -> str:
    """The owb task a run's task name measures: aime24 for aime24@think512 and for livecodebench@window=..."""
    name, _ = split_name(task)
    return split_arguments(name)[0]


def _shown(value: Any) -> str:
    """A setting as a difference names it: none, 0.6, 'a prompt', 32768."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value) if isinstance(value, str) else str(value)


def card_differences(record: RunRecord, task: str) -> list[str]:
    """The task's decoding and budget against the run's card's recommendation for its thinking mode and task."""
    gen = record.tasks[task].config.generation
    card = record.model.card
    wanted = card.sampling_for(record.thinking)
    found = [f"{field} {_shown(getattr(gen, field))} (run) vs {_shown(getattr(wanted, field))} (card)"
             for field in SAMPLING_FIELDS if getattr(gen, field) != getattr(wanted, field)]
    budget = card.max_new_tokens_for(record.thinking, base_name(task))
    if gen.max_new_tokens != budget:
        found.append(f"max_new_tokens {gen.max_new_tokens} (run) vs {budget} (card, thinking {record.thinking})")
    return found


def _claims_to_compare(record: RunRecord, task: str) -> list[PublishedScore]:
    """The task's claims the run was measured like (matched beside it), else those of its thinking mode, else all."""
    result = record.tasks[task]
    claims = [c for c in record.model.card.published if c.task == base_name(task)]
    matched = [c for c in claims if c.metric in result.metrics and claim_mismatch(record, task, c.metric, c) is None]
    same_mode = [c for c in claims if c.thinking in (None, record.thinking)]
    return matched or same_mode or claims


def claim_differences(record: RunRecord, task: str) -> list[str]:
    """The task's settings against each published claim's protocol (where the claim states the setting)."""
    gen = record.tasks[task].config.generation
    found: list[str] = []
    for claim in _claims_to_compare(record, task):
        p = claim.protocol
        pairs = [("thinking", record.thinking, claim.thinking), ("samples per problem", gen.samples_per_doc, p.samples),
                 ("temperature", gen.temperature, p.temperature), ("top_p", gen.top_p, p.top_p),
                 ("top_k", gen.top_k, p.top_k), ("presence_penalty", gen.presence_penalty, p.presence_penalty),
                 ("max tokens", gen.max_new_tokens, p.max_tokens), ("protocol", record.invocation.protocol, p.name)]
        found += [f"{label} {_shown(ran)} (run) vs {_shown(want)} ({claim.benchmark} claim, {claim.source})"
                  for label, ran, want in pairs if want is not None and ran != want]
        if gen.thinking_budget is not None:
            found.append(f"thinking budget {gen.thinking_budget} (run) vs none ({claim.benchmark} claim)")
    return list(dict.fromkeys(found))


def _repository_card(card: ModelCard) -> ModelCard | None:
    try:
        return load_card(card.id)
    except ConfigError:  # a card given as a file, with an id the repository does not hold
        return None


def template_differences(record: RunRecord, task: str) -> list[str]:
    """The run's card against model_cards/<id>.yaml as it is now (system prompt, chat template and its arguments,
    think tags, recommended decoding), and the run's task spec (prompt, scorer, metrics) against tasks/<task>.yaml."""
    found = []
    ran = record.model.card
    current = _repository_card(ran)
    if current is not None:
        found += [f"{field} {_shown(getattr(ran, field))} (run's card) vs {_shown(getattr(current, field))} "
                  f"(model_cards/{ran.id}.yaml)"
                  for field in CARD_FIELDS if getattr(ran, field) != getattr(current, field)]
    name, _ = split_name(task)
    base, args = split_arguments(name)
    try:
        spec = load_task_spec(base)
        spec_hash = (with_arguments(spec, args) if args else spec).spec_hash()
    except ConfigError:  # an lm-eval task or one no longer in tasks/: nothing to compare with
        return found
    if spec_hash != record.tasks[task].config.spec_hash:
        found.append(f"task spec {record.tasks[task].config.spec_hash} (run) vs {spec_hash} (tasks/{base}.yaml now: "
                     "its prompt, scorer or metrics changed)")
    return found


def setting_differences(record: RunRecord, task: str) -> list[str]:
    """Every named difference of a task's settings from the card, the claims and the repository's card and task."""
    return list(dict.fromkeys(card_differences(record, task) + claim_differences(record, task)
                              + template_differences(record, task)))
