"""latent-zoo: a plugin-based model zoo for comparing the latent spaces of generative models.

Importing ``zoo`` does not import torch; the torch-side API (``create_model``, ``ZooModel``, ...) loads on first use.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import CapabilityError, DataError, InputError, RegistrationError, UnknownName, WeightsError, ZooError
from zoo.hookspecs import hookimpl
from zoo.plugins import get_plugin_manager, list_plugins
from zoo.registry import list_models, resolve_model
from zoo.spec import (DatasetSpec, FitSetSpec, ImageSpec, LatentSpec, ModelSpec, Option, RelocationMapSpec, TaskSpec,
                      WeightsCfg)

__version__ = "0.1.0"

_LAZY = {
    "ZooModel": "zoo.protocol",
    "LatentDist": "zoo.protocol",
    "require": "zoo.protocol",
    "create_model": "zoo.factory",
    "build_model": "zoo.factory",
    "load_pretrained": "zoo.factory",
    "convert": "zoo.factory",
    "save_pretrained": "zoo.hub",
    "run": "zoo.tasks",
    "wrap": "zoo.wrapping",
    "ModelRef": "zoo.ref",
    "parse_ref": "zoo.ref",
    "get_dataset": "zoo.data",
    "list_datasets": "zoo.data",
}

__all__ = [
    "CapabilityError", "DataError", "DatasetSpec", "InputError", "FitSetSpec", "ImageSpec", "LatentSpec", "ModelSpec", "Option",
    "RegistrationError", "RelocationMapSpec", "TaskSpec", "UnknownName", "WeightsCfg", "WeightsError", "ZooError", "get_plugin_manager",
    "hookimpl", "list_models", "list_plugins", "resolve_model", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
