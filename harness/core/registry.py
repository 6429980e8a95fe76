"""One typed, lazy registry for backends, scorers and task hooks: a name maps to a class or function, or to the
"module:attr" that holds it, imported only on first use (so `import harness` loads no engine).

Modelled on Inspect AI's `@modelapi` registry: a missing optional package is one error naming the extra that
provides it. Names task YAMLs hashed into their spec (hook paths from before the layered package) stay valid as
aliases, so old runs keep resuming.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from harness.core.errors import ConfigError, EngineError, did_you_mean

T = TypeVar("T")


@dataclass(frozen=True)
class Entry:
    """Where a registered object lives ("module:attr", or the object) and the pip extra its packages come from."""

    target: object
    extra: str | None = None


class Registry(Generic[T]):
    """Names to objects of one kind, imported lazily; `open_paths` also accepts any "module:attr" as a name."""

    def __init__(self, kind: str, entries: Mapping[str, str | Entry], aliases: Mapping[str, str] | None = None,
                 open_paths: bool = False) -> None:
        self.kind = kind
        self._entries = {name: e if isinstance(e, Entry) else Entry(e) for name, e in entries.items()}
        self._aliases = dict(aliases or {})
        self._open_paths = open_paths

    def register(self, name: str, target: str | T, extra: str | None = None) -> None:
        """Add (or replace) an entry: the object itself, or "module:attr" imported when first used."""
        self._entries[name] = Entry(target, extra)

    def unregister(self, name: str) -> None:
        """Remove an entry (one registered at run time)."""
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._aliases

    def get(self, name: str) -> T:
        """The object registered under `name` (or an alias of it), its module imported now."""
        name = self._aliases.get(name, name)
        entry = self._entries.get(name)
        if entry is None:
            if not (self._open_paths and ":" in name):
                raise ConfigError(f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)} "
                                  f"(choose one of {', '.join(self._entries)})")
            entry = Entry(name)
        if not isinstance(entry.target, str):
            return cast(T, entry.target)
        return cast(T, self._import(name, entry))

    def _import(self, name: str, entry: Entry) -> Any:
        module_name, _, attr = str(entry.target).partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            if exc.name is not None and (exc.name == module_name or module_name.startswith(f"{exc.name}.")):
                raise ConfigError(f"{self.kind} '{name}' not found (expected module:function)") from None
            extra = f" (pip install 'owb[{entry.extra}]')" if entry.extra else ""
            raise EngineError(f"{self.kind} '{name}' needs a package that is not installed: "
                              f"{exc.name}{extra}") from None
        try:
            return getattr(module, attr)
        except AttributeError:
            raise ConfigError(f"{self.kind} '{name}' not found (expected module:function)") from None


# Hooks named in task YAMLs before the layered package (their strings are part of each task's spec hash).
HOOK_ALIASES = {
    "harness.hooks:repair_latex_escapes": "harness.tasks.quirks:repair_latex_escapes",
    "harness.scorers.code:humaneval_program": "harness.scoring.code:humaneval_program",
    "harness.scorers.code:mbpp_program": "harness.scoring.code:mbpp_program",
    "harness.scorers.evalplus:require_inputs": "harness.scoring.evalplus.oracles:require_inputs",
}
HOOKS: Registry[Callable[..., Any]] = Registry("hook", {}, aliases=HOOK_ALIASES, open_paths=True)


def load_hook(target: str) -> Callable[..., Any]:
    """A task hook named "module:function" (old names resolve through HOOK_ALIASES)."""
    return HOOKS.get(target)
