"""The plugin manager: entry points in the ``zoo`` group, built-ins included, loaded lazily with failures isolated.

Environment switches (read when the manager is built; tests call :func:`reset`):

- ``ZOO_LOAD_PLUGINS=a,b``  load only these plugins (entry-point or distribution names); empty loads none.
- ``ZOO_DISABLE_PLUGINS=a,b``  skip these plugins.
- ``ZOO_STRICT_PLUGINS=1``  re-raise a plugin's import error instead of listing it as broken.
- ``ZOO_TRACE_PLUGINS=1``  print every hook call on stderr.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import pluggy

from zoo import hookspecs

ENTRY_POINT_GROUP = "zoo"


@dataclass
class PluginRecord:
    """What ``zoo plugins`` shows for one plugin."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None

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


class ZooPluginManager(pluggy.PluginManager):
    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}

    def load_entrypoints(self, group: str = ENTRY_POINT_GROUP) -> None:
        only, disabled = _names("ZOO_LOAD_PLUGINS"), _names("ZOO_DISABLE_PLUGINS") or set()
        strict = os.environ.get("ZOO_STRICT_PLUGINS", "") not in ("", "0")
        for ep in sorted(md.entry_points(group=group), key=lambda e: e.name):
            dist = ep.dist.metadata["Name"] if ep.dist is not None else None
            if only is not None and ep.name not in only and dist not in only:
                continue
            if ep.name in disabled or dist in disabled or ep.name in self.records:
                continue
            record = PluginRecord(ep.name, ep.value, dist, ep.dist.version if ep.dist is not None else None)
            self.records[ep.name] = record
            try:
                self.register_plugin(ep.load(), ep.name, record)
            except Exception as exc:
                if strict:
                    raise
                record.error = f"{type(exc).__name__}: {exc}"

    def register_plugin(self, plugin: object, name: str, record: PluginRecord | None = None) -> PluginRecord:
        """Register ``plugin`` (a module or object with ``@zoo.hookimpl`` functions) and record it."""
        self.register(plugin, name=name)
        self.check_pending()
        record = record or self.records.setdefault(name, PluginRecord(name, getattr(plugin, "__name__", repr(plugin))))
        record.hooks = sorted(h.name for h in self.get_hookcallers(plugin) or [])
        return record

    def unregister_plugin(self, name: str) -> None:
        self.unregister(name=name)
        self.records.pop(name, None)


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
