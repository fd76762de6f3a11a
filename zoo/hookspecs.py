"""The hooks a zoo plugin can implement. Each receives a ``register`` callback (simonw/llm style).

Registration must be cheap: no torch import, no model construction, no file or network I/O.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def zoo_register_models(register: Any) -> None:
    """Register architectures: call ``register(ModelSpec(...))`` once per architecture."""


@hookspec
def zoo_register_datasets(register: Any) -> None:
    """Register datasets: call ``register(DatasetSpec(...))``."""


@hookspec
def zoo_register_metrics(register: Any) -> None:
    """Register metrics that run on one model: call ``register(MetricSpec(...))``."""


@hookspec
def zoo_register_tools(register: Any) -> None:
    """Register tools that run on a pair of models: call ``register(ToolSpec(...))``."""


@hookspec
def zoo_register_commands(cli: Any) -> None:
    """Attach extra click commands or groups to the ``zoo`` command line."""
