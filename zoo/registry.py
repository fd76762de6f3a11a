"""Name → spec tables, built on first use from every plugin's ``zoo_register_*`` hook.

Each plugin's hook is called on its own so every entry records who registered it, and a broken plugin loses only
its own registrations. Model names are ``ARCH[.TAG]`` (timm): a bare ``ARCH`` means its default weights, aliases map
to ``ARCH`` or ``ARCH.TAG``.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from zoo.errors import RegistrationError, UnknownName
from zoo.plugins import get_plugin_manager
from zoo.spec import DatasetSpec, FitSetSpec, ModelSpec, RelocationMapSpec, TaskSpec, WeightsCfg

T = TypeVar("T")
LISTING = {"model": "zoo list", "dataset": "zoo data list", "task": "zoo run --help",
           "relocation map": "zoo relocate --help", "fit set": "zoo relocate --help"}


@dataclass(frozen=True)
class Entry(Generic[T]):
    spec: T
    plugin: str  # the plugin (entry-point) name that registered it


class Registry(Generic[T]):
    """One table (models, datasets, metrics or tools) filled by the hook of the same kind."""

    def __init__(self, kind: str, hook: str, spec_type: type, key: str) -> None:
        self.kind, self.hook, self.spec_type, self.key = kind, hook, spec_type, key
        self._entries: dict[str, Entry[T]] | None = None
        self._aliases: dict[str, str] = {}

    def _names_of(self, spec: Any) -> list[str]:
        return [getattr(spec, self.key), *getattr(spec, "aliases", ())]

    def _build(self) -> dict[str, Entry[T]]:
        """Each plugin's hook is called on its own; a plugin that raises, registers something that is not a
        ``spec_type`` or claims a taken name loses its registrations here and is marked broken (see
        :meth:`zoo.plugins.ZooPluginManager.gather`); the others stand."""

        def hook_args(plugin: str, specs: list[Any]) -> dict[str, Any]:
            def register(spec: Any) -> None:
                if not isinstance(spec, self.spec_type):
                    raise RegistrationError(f"registered a {type(spec).__name__} where a "
                                            f"{self.spec_type.__name__} was expected")
                specs.append(spec)

            return {"register": register}

        entries: dict[str, Entry[T]] = {}
        aliases: dict[str, str] = {}
        for plugin, spec in get_plugin_manager().gather(self.hook, self.kind, hook_args, self._names_of):
            primary = getattr(spec, self.key)
            entries[primary] = Entry(spec, plugin)
            aliases.update(dict.fromkeys(getattr(spec, "aliases", ()), primary))
        self._aliases = aliases
        return entries

    @property
    def entries(self) -> dict[str, Entry[T]]:
        if self._entries is None:
            self._entries = self._build()
        return self._entries

    def reset(self) -> None:
        self._entries, self._aliases = None, {}

    def names(self) -> list[str]:
        return sorted(self.entries)

    def resolve_alias(self, name: str) -> str:
        self.entries  # noqa: B018 - builds aliases
        return self._aliases.get(name, name)

    def get(self, name: str) -> Entry[T]:
        entry = self.entries.get(self.resolve_alias(name))
        if entry is None:
            raise UnknownName(self.unknown_message(name))
        return entry

    def unknown_message(self, name: str, candidates: list[str] | None = None) -> str:
        candidates = candidates if candidates is not None else [*self.entries, *self._aliases]
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (see `{LISTING[self.kind]}`)"


models: Registry[ModelSpec] = Registry("model", "zoo_register_models", ModelSpec, "arch")
datasets: Registry[DatasetSpec] = Registry("dataset", "zoo_register_datasets", DatasetSpec, "name")
tasks: Registry[TaskSpec] = Registry("task", "zoo_register_tasks", TaskSpec, "name")
relocation_maps: Registry[RelocationMapSpec] = Registry("relocation map", "zoo_register_relocation_maps",
                                                        RelocationMapSpec, "name")
fit_sets: Registry[FitSetSpec] = Registry("fit set", "zoo_register_fit_sets", FitSetSpec, "name")
ALL = (models, datasets, tasks, relocation_maps, fit_sets)


def reset() -> None:
    for r in ALL:
        r.reset()


@dataclass(frozen=True)
class ResolvedModel:
    """A model name resolved against the registry."""

    name: str  # canonical "arch.tag" (or "arch" when it has no weights)
    spec: ModelSpec
    weights: WeightsCfg | None
    plugin: str


def resolve_model(name: str) -> ResolvedModel:
    """``"svae"`` → splitvae and its default weights; ``"betavae.b4"`` → that tag; unknown → did-you-mean.
    ``name`` is a registry name (see :func:`zoo.ref.parse_ref`, which tells names from weights sources)."""
    name = models.resolve_alias(name)
    arch, _, tag = name.partition(".")
    entry = models.entries.get(arch)
    if entry is None:
        raise UnknownName(models.unknown_message(name, [*models.entries, *models._aliases, *list_models()]))
    weights = entry.spec.get_weights(tag or None)
    if tag and weights is None:
        tags = [w.tag for w in entry.spec.weights]
        raise UnknownName(f"model {arch!r} has no weights tag {tag!r}; known tags: {', '.join(tags) or 'none'}")
    full = f"{arch}.{weights.tag}" if weights else arch
    return ResolvedModel(full, entry.spec, weights, entry.plugin)


def _natural_key(s: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def list_models(pattern: str | None = None, *, pretrained: bool = False) -> list[str]:
    """``arch.tag`` names (and bare ``arch`` for architectures with no tags), fnmatch-filtered, naturally sorted."""
    names = []
    for arch, entry in models.entries.items():
        ws = [w for w in entry.spec.weights if w.available or not pretrained]
        if not entry.spec.weights and not pretrained:
            names.append(arch)
        names += [f"{arch}.{w.tag}" for w in ws]
    if pattern:
        alias_target = models.resolve_alias(pattern)
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n.split(".")[0], pattern)
                 or n == alias_target or n.split(".")[0] == alias_target]
    return sorted(names, key=_natural_key)
