"""The plugin manager: entry points in the ``zoo`` group, built-ins included, loaded lazily with failures isolated.

A plugin that fails to import, implements an unknown hook, raises in a hook, registers something that is not a spec,
or claims a name that is taken is listed as broken by ``zoo plugins`` and skipped; every other plugin keeps working.
Names: a built-in plugin (distribution ``latent-zoo``) always keeps its names; when two other plugins claim the same
name, neither gets it (a winner would depend on install order).

Environment switches (read when the manager is built; tests call :func:`reset`):

- ``ZOO_LOAD_PLUGINS=a,b``  load only these plugins (entry-point or distribution names); empty loads none.
- ``ZOO_DISABLE_PLUGINS=a,b``  skip these plugins.
- ``ZOO_STRICT_PLUGINS=1``  re-raise a plugin's error instead of listing it as broken.
- ``ZOO_TRACE_PLUGINS=1``  print every hook call on stderr.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata as md
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from zoo import hookspecs
from zoo.errors import RegistrationError

ENTRY_POINT_GROUP = "zoo"
BUILTIN_DISTRIBUTION = "latent-zoo"  # the built-ins are this package's own entry points
HOOK_NAMES = sorted(n for n in vars(hookspecs) if n.startswith("zoo_"))


@dataclass
class PluginRecord:
    """What ``zoo plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    load_error: str | None = None  # it could not be loaded at all (import error, unknown hook)
    hook_errors: dict[str, str] = field(default_factory=dict)  # hook → why its registrations there were dropped
    # An installed plugin's errors are recorded and it is skipped; one registered in-process by the caller's own code
    # (register_plugin) or under ZOO_STRICT_PLUGINS=1 raises them, so a developer hears at once.
    isolated: bool = False

    @property
    def error(self) -> str | None:
        """Everything wrong with this plugin, in one line (None when nothing is)."""
        return "; ".join(e for e in (self.load_error, *self.hook_errors.values()) if e) or None

    @property
    def builtin(self) -> bool:
        return self.distribution == BUILTIN_DISTRIBUTION

    @property
    def provider(self) -> str:
        if self.distribution:
            return f"{self.name} ({self.distribution} {self.version})"
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "distribution": self.distribution,
                "version": self.version, "hooks": self.hooks, "error": self.error}


def _names(env: str) -> set[str] | None:
    value = os.environ.get(env)
    if value is None:
        return None
    return {n.strip() for n in value.split(",") if n.strip()}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class ZooPluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}

    def load_entrypoints(self, group: str = ENTRY_POINT_GROUP) -> None:
        only, disabled = _names("ZOO_LOAD_PLUGINS"), _names("ZOO_DISABLE_PLUGINS") or set()
        strict = os.environ.get("ZOO_STRICT_PLUGINS", "") not in ("", "0")

        def dist_of(ep: md.EntryPoint) -> str | None:
            return ep.dist.metadata["Name"] if ep.dist is not None else None

        # built-ins first, so an installed entry point cannot take a built-in's plugin name
        for ep in sorted(md.entry_points(group=group), key=lambda e: (dist_of(e) != BUILTIN_DISTRIBUTION, e.name)):
            dist = dist_of(ep)
            if only is not None and ep.name not in only and dist not in only:
                continue
            if ep.name in disabled or dist in disabled:
                continue
            record = PluginRecord(ep.name, ep.value, dist, ep.dist.version if ep.dist is not None else None,
                                  isolated=not strict)
            if ep.name in self.records:
                if self.records[ep.name].distribution == dist:
                    continue  # the same distribution seen twice on sys.path
                taken_by = self.records[ep.name]
                record.name = f"{dist}:{ep.name}"
                record.load_error = (f"entry-point name {ep.name!r} is taken by plugin {taken_by.provider}; "
                                     f"not loaded (rename the entry point, or set ZOO_DISABLE_PLUGINS={dist})")
                self.records[record.name] = record
                continue
            self.records[ep.name] = record
            try:
                self.register_plugin(ep.load(), ep.name, record)
            except Exception as exc:
                if strict:
                    raise
                record.load_error = _one_line(exc)

    def register_plugin(self, plugin: object, name: str, record: PluginRecord | None = None) -> PluginRecord:
        """Register ``plugin`` (a module or object with ``@zoo.hookimpl`` functions) and record it.

        A plugin implementing a hook zoo does not have (a misspelling) is unregistered and refused; only that plugin
        (pluggy's ``check_pending`` would blame every plugin registered after it)."""
        self.register(plugin, name=name)
        unknown = [hc.name for hc in self.get_hookcallers(plugin) or [] if not hc.has_spec()
                   and any(i.plugin is plugin and not i.optionalhook for i in hc.get_hookimpls())]
        if unknown:
            self.unregister(plugin)
            close = difflib.get_close_matches(unknown[0], HOOK_NAMES, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (zoo's hooks: {', '.join(HOOK_NAMES)})"
            raise pluggy.PluginValidationError(plugin, f"unknown hook {unknown[0]!r}{hint}; the plugin is not loaded")
        record = record or self.records.setdefault(name, PluginRecord(name, getattr(plugin, "__name__", repr(plugin))))
        record.hooks = sorted(h.name for h in self.get_hookcallers(plugin) or [])
        return record

    def unregister_plugin(self, name: str) -> None:
        self.unregister(name=name)
        self.records.pop(name, None)

    def _describe(self, plugin: str) -> str:
        record = self.records.get(plugin)
        if record is not None and record.distribution:
            return f"{plugin!r} ({record.distribution} {record.version})"
        return repr(plugin)

    def gather(self, hook: str, kind: str, hook_args: Callable[[str, list[Any]], Mapping[str, Any]],
               names_of: Callable[[Any], Iterable[str]], reserved: Mapping[str, str] = {}) -> list[tuple[str, Any]]:
        """Call each plugin's ``hook`` on its own and return the ``(plugin, item)`` pairs that stand.

        ``hook_args(plugin, items)`` gives the hook's keyword arguments; they append what the plugin registers to
        ``items``. ``names_of(item)`` are the names an item claims; ``reserved`` maps names taken beforehand to who
        holds them. All or nothing per plugin: one whose hook raises, or which claims a taken name, loses everything
        it registered through this hook, and its record says why."""
        failed: dict[str, str] = {}  # plugin → what went wrong
        batches = self._call_each(hook, hook_args, failed)
        accepted = self._settle_names(hook, kind, batches, names_of, reserved, failed)
        self._record(hook, kind, failed)
        return accepted

    def _call_each(self, hook: str, hook_args: Callable[[str, list[Any]], Mapping[str, Any]],
                   failed: dict[str, str]) -> list[tuple[str, list[Any]]]:
        """(plugin, what it registered) for every plugin whose ``hook`` ran to the end."""
        batches = []
        for impl in getattr(self.hook, hook).get_hookimpls():
            plugin, items = impl.plugin_name, []
            others = [p for p in self.get_plugins() if p is not impl.plugin]
            caller = self.subset_hook_caller(hook, others)  # through pluggy, so ZOO_TRACE_PLUGINS shows the call
            try:
                caller(**hook_args(plugin, items))
            except RegistrationError as exc:  # raised by hook_args' callbacks: says what was wrong with an item
                failed[plugin] = f"{hook}: {exc}"
            except Exception as exc:
                if not self._isolated(plugin):
                    raise
                failed[plugin] = f"{hook} raised {_one_line(exc)}"
            else:
                batches.append((plugin, items))
        return batches

    def _settle_names(self, hook: str, kind: str, batches: list[tuple[str, list[Any]]],
                      names_of: Callable[[Any], Iterable[str]], reserved: Mapping[str, str],
                      failed: dict[str, str]) -> list[tuple[str, Any]]:
        """Built-ins claim their names first; then the others, where a name claimed twice goes to neither."""
        taken = dict(reserved)  # name → who holds it
        accepted: list[tuple[str, Any]] = []
        for builtin_tier in (True, False):
            tier = []
            for plugin, items in batches:
                if self._builtin(plugin) != builtin_tier:
                    continue
                names = [n for item in items for n in names_of(item)]
                twice = sorted({n for n in names if names.count(n) > 1})
                clash = [n for n in names if n in taken]
                if twice:
                    failed[plugin] = f"{hook} registers the {kind} name {twice[0]!r} twice"
                elif clash:
                    failed[plugin] = f"{kind} name {clash[0]!r} is already taken by {taken[clash[0]]}"
                else:
                    tier.append((plugin, items, names))
            claims: dict[str, list[str]] = {}
            for plugin, _, names in tier:
                for n in names:
                    claims.setdefault(n, []).append(plugin)
            for n, plugins in claims.items():
                for plugin in plugins if len(plugins) > 1 else ():
                    other = next(p for p in plugins if p != plugin)
                    failed.setdefault(plugin, f"{kind} name {n!r} is registered by both plugin "
                                              f"{self._describe(plugin)} and plugin {self._describe(other)}, so "
                                              f"neither gets it; its {kind}s are skipped (uninstall one, or set "
                                              f"ZOO_DISABLE_PLUGINS={plugin} or ZOO_DISABLE_PLUGINS={other})")
            for plugin, items, names in tier:
                if plugin not in failed:
                    owner = f"built-in plugin {self._describe(plugin)}" if builtin_tier else self._describe(plugin)
                    taken.update(dict.fromkeys(names, owner))
                    accepted += [(plugin, item) for item in items]
        return accepted

    def _builtin(self, plugin: str) -> bool:
        return plugin in self.records and self.records[plugin].builtin

    def _isolated(self, plugin: str) -> bool:
        record = self.records.get(plugin)
        return record is not None and record.isolated

    def _record(self, hook: str, kind: str, failed: Mapping[str, str]) -> None:
        """Put each failure on its plugin's record; an in-process or strict plugin's failure raises instead."""
        for record in self.records.values():
            record.hook_errors.pop(hook, None)  # rebuilt from scratch on every call
        for plugin, problem in failed.items():
            if not self._isolated(plugin):
                raise RegistrationError(f"plugin {plugin!r}: {problem}")
            if "ZOO_DISABLE_PLUGINS" not in problem:  # say what is lost and what to do, once
                problem += f"; its {kind}s are skipped (fix or uninstall it, or set ZOO_DISABLE_PLUGINS={plugin})"
            self.records[plugin].hook_errors[hook] = problem


@functools.cache
def get_plugin_manager() -> ZooPluginManager:
    pm = ZooPluginManager()
    pm.load_entrypoints()
    if os.environ.get("ZOO_TRACE_PLUGINS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def reset() -> None:
    """Forget the plugin manager and every registry built from it (tests; after installing a plugin)."""
    get_plugin_manager.cache_clear()
    from zoo import registry

    registry.reset()


def list_plugins() -> list[PluginRecord]:
    return sorted(get_plugin_manager().records.values(), key=lambda r: r.name)
