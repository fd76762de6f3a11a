"""Datasets with ground-truth factors (procedural dSprites, faces64) and loaders for files users already have.

Torch loads on first use: importing ``zoo.data`` (as the plugin manager does) stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["GroundTruthDataset", "ImageDataset", "get_dataset", "list_datasets"]


def __getattr__(name: str) -> Any:
    if name in ("GroundTruthDataset", "ImageDataset"):
        from zoo.data import base

        return getattr(base, name)
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")


def get_dataset(name: str, **kwargs: Any) -> Any:
    """Build a registered dataset: ``get_dataset("faces64")``, ``get_dataset("dsprites_npz", path="...")``."""
    from zoo import registry
    from zoo._util import import_object

    spec = registry.datasets.get(name).spec
    return import_object(spec.factory)(**{**spec.default_args, **kwargs})


def list_datasets() -> list[dict[str, Any]]:
    from zoo import registry

    return [{"name": n, "description": e.spec.description, "procedural": e.spec.procedural, "plugin": e.plugin}
            for n, e in sorted(registry.datasets.entries.items())]
