"""The backend registry: a run names a backend, and only then is its module (and its engine) imported; the backend's
options come from the card, owb's flags and `--backend-arg`, validated by the backend's own Options model."""

from __future__ import annotations

from typing import Any

from harness.config.cards import ModelCard
from harness.core.errors import ConfigError
from harness.core.registry import Entry, Registry
from harness.engines.base import Backend, BackendOptions, EngineRequest

BACKENDS: Registry[Any] = Registry("backend", {
    "hf": "harness.engines.hf.backend:HFBackend",
    "vllm": Entry("harness.engines.vllm:VLLMBackend", extra="vllm"),
    "openai": Entry("harness.engines.openai:OpenAIBackend", extra="api"),
    "replay": "harness.engines.replay:ReplayBackend",
})


def register_backend(name: str, target: str | type) -> None:
    """Add a backend at run time: a class, or "module:Class" imported when it is first used."""
    BACKENDS.register(name, target)


def backend_class(name: str) -> Any:
    """The backend class registered under `name` (its module imported only now)."""
    return BACKENDS.get(name)


def backend_options(name: str, card: ModelCard, request: EngineRequest, args: dict[str, Any]) -> BackendOptions:
    """The named backend's validated options: the card's engine_args for this backend, then what owb's request
    (--batch-size, --dtype, --tp, ...) sets, then `args` (the CLI's --backend-arg). Nothing is loaded, so a bad
    option fails at once."""
    cls = backend_class(name)
    try:
        from_flags = cls.Options.build(card, request, {}).model_dump(exclude_unset=True)
        options: BackendOptions = cls.Options.build(card, request,
                                                    {**card.engine_args.get(name, {}), **from_flags, **args})
    except ConfigError as exc:
        raise ConfigError(f"backend {name}: {exc}") from None
    return options


def make_backend(name: str, card: ModelCard, request: EngineRequest, args: dict[str, Any]) -> Backend:
    """Build the named backend for the card with its validated options."""
    backend: Backend = backend_class(name)(card, backend_options(name, card, request, args))
    return backend
