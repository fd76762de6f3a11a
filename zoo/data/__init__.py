"""Datasets with ground-truth factors (procedural dSprites, faces64) and loaders for files users already have.

Torch loads on first use: importing ``zoo.data`` (as the plugin manager does) stays cheap.
"""

from __future__ import annotations

from typing import Any

from zoo.errors import ZooError

__all__ = ["GroundTruthDataset", "ImageDataset", "dataset_for", "get_dataset", "list_datasets"]


def __getattr__(name: str) -> Any:
    if name in ("GroundTruthDataset", "ImageDataset"):
        from zoo.data import base

        return getattr(base, name)
    raise AttributeError(f"module 'zoo.data' has no attribute {name!r}")


def get_dataset(name: str, **kwargs: Any) -> Any:
    """Build a registered dataset: ``get_dataset("faces64")``, ``get_dataset("dsprites_npz", path="...")``, or a
    file-backed one named with its path: ``get_dataset("folder:photos/", size=64)``, ``"npz:faces.npz"``."""
    from zoo import registry
    from zoo._util import import_object

    kind, sep, path = name.partition(":")
    if sep:  # NAME:PATH is NAME with path=PATH (folder:, npz:, npy:, or any file-backed dataset)
        if not path:
            raise ZooError(f"{name!r}: give the path after the colon, e.g. {kind}:DIR")
        name, kwargs = kind, {**kwargs, "path": path}
    spec = registry.datasets.get(name).spec
    return import_object(spec.factory)(**{**spec.default_args, **kwargs})


def dataset_for(*models: Any, data: str | None = None, need_factors: bool = False, **kwargs: Any) -> Any:
    """The dataset a tool runs on: ``data`` if given, else the one the models were trained on (one line if they
    differ, or if none says). ``need_factors=True`` requires ground-truth factors; ``kwargs`` go to the dataset."""
    if data is None:
        trained = {m.display_name: m.image_spec.dataset for m in models}
        names = set(trained.values()) - {None}  # a model that does not say (an outside VAE) takes the others' data
        if len(names) != 1:
            which = ", ".join(f"{m} on {d!r}" for m, d in trained.items())
            raise ZooError(f"no common training dataset ({which}); pass --data NAME (see `zoo data list`)"
                           if models else "this task needs data; pass --data NAME (see `zoo data list`)")
        data = names.pop()
    dataset = get_dataset(data, **kwargs)
    if need_factors and not dataset.has_factors:
        raise ZooError(f"{data} has no ground-truth factors; this task needs a dataset such as dsprites or faces64")
    return dataset


def list_datasets() -> list[dict[str, Any]]:
    from zoo import registry

    return [{"name": n, "description": e.spec.description, "procedural": e.spec.procedural, "plugin": e.plugin}
            for n, e in sorted(registry.datasets.entries.items())]
