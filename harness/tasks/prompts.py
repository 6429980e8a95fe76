"""Build prompts: the task's chat or base template, few-shot examples, and the card's thinking switch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from harness.config.base import Mode
from harness.config.cards import ModelCard
from harness.config.taskspec import TaskSpec
from harness.core.errors import ConfigError
from harness.tasks.data import Document


class ChatRenderer(Protocol):
    """Anything that renders chat messages through a model's template (every backend)."""

    def render_chat(self, messages: list[dict[str, str]], template_kwargs: dict[str, Any]) -> str:
        """The prompt text of a chat."""
        ...


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt and the stop strings that go with it."""

    text: str
    stop: tuple[str, ...]


def fill(template: str, fields: dict[str, Any], task: str) -> str:
    """A template with {field} placeholders filled from a document."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError) as exc:
        raise ConfigError(f"task {task}: prompt template names a field the data lacks: {exc}") from None


def chat_messages(spec: TaskSpec, card: ModelCard, mode: Mode, doc: Document) -> list[dict[str, str]]:
    """System prompt (if the card has one) and the user turn, with the thinking flag where the family uses one."""
    user = fill(spec.prompt.chat, doc.fields, spec.name)
    if card.thinking.kind == "prompt_flag":
        user = f"{user} {card.thinking.on_flag if mode == 'on' else card.thinking.off_flag}"
    messages = [{"role": "system", "content": card.system_prompt}] if card.system_prompt else []
    return [*messages, {"role": "user", "content": user}]


def template_kwargs(card: ModelCard, mode: Mode) -> dict[str, Any]:
    """Chat-template kwargs: the card's own plus the thinking switch where it is a template kwarg."""
    kwargs = dict(card.chat_template_kwargs)
    if card.thinking.kind == "template_kwarg":
        kwargs[card.thinking.kwarg] = mode == "on"
    return kwargs


def base_prompt(spec: TaskSpec, doc: Document, data_shots: list[dict[str, Any]]) -> str:
    """Few-shot examples (written in the spec, then taken from the data) and the document, for base models."""
    p = spec.prompt
    shots = [fill(p.base, shot.input, spec.name) + shot.output for shot in p.fewshot]
    shots += [fill(p.base, row, spec.name) + fill(p.fewshot_output, row, spec.name) for row in data_shots]
    return p.fewshot_separator.join([*shots[: p.shots], fill(p.base, doc.fields, spec.name)])


def build_prompt(spec: TaskSpec, card: ModelCard, mode: Mode, doc: Document, renderer: ChatRenderer,
                 data_shots: list[dict[str, Any]] | None = None) -> Prompt:
    """The prompt text for one document: through the chat template for chat models, raw for base models."""
    if card.chat:
        text = renderer.render_chat(chat_messages(spec, card, mode, doc), template_kwargs(card, mode))
        return Prompt(text=text, stop=())
    return Prompt(text=base_prompt(spec, doc, data_shots or []), stop=tuple(spec.prompt.base_stop))
