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
def zoo_register_tasks(register: Any) -> None:
    """Register metrics and tools (on one model, a pair, or none): call ``register(TaskSpec(...))``."""


@hookspec
def zoo_register_relocation_maps(register: Any) -> None:
    """Register ways to map one latent space into another: call ``register(RelocationMapSpec(...))``."""


@hookspec
def zoo_register_fit_sets(register: Any) -> None:
    """Register ways to choose the images a relocation map is fitted on: call ``register(FitSetSpec(...))``."""


@hookspec
def zoo_register_commands(cli: Any) -> None:
    """Attach extra click commands or groups to the ``zoo`` command line."""
