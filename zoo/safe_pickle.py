"""Tensors out of a network pickle without running any code from it.

NVlabs' stylegan2-ada-pytorch pickles hold ``persistent_class`` objects that reduce to
``torch_utils.persistence._reconstruct_persistent_obj(meta)``, where ``meta["module_src"]`` is the full Python source
of the networks — a normal ``pickle.load`` executes it. This unpickler resolves only a whitelist of globals: the
persistent-object hook becomes a stub that returns the object's ``__dict__`` (``meta["state"]``) and never looks at
``module_src``; tensors are rebuilt by torch's own functions, their storages read with ``torch.load(...,
weights_only=True)``. Any other global is refused with one line naming it.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
from typing import Any

import torch

from zoo.errors import WeightsError


class PersistentState(dict):
    """The ``__dict__`` of a pickled persistent object, plus its class name in ``class_name``."""

    class_name: str = ""


def _reconstruct_persistent_obj(meta: Any) -> PersistentState:
    if not isinstance(meta, dict) or not isinstance(meta.get("state"), dict):
        raise pickle.UnpicklingError("a persistent object without a state dict")
    state = PersistentState(meta["state"])
    state.class_name = str(meta.get("class_name", ""))
    return state


def _load_storage(data: bytes) -> Any:
    return torch.load(io.BytesIO(data), weights_only=True)


class _EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access) without importing dnnlib."""


# numpy arrays and scalars (e.g. float attributes of NVlabs modules) are rebuilt from raw bytes; no code runs
NUMPY_NAMES = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "scalar")}


def _numpy_global(module: str, name: str) -> Any:
    import numpy as np

    if module == "numpy":
        return getattr(np, name)
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return getattr(multiarray, name)


ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class TensorOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if (module, name) in NUMPY_NAMES:
            return _numpy_global(module, name)
        raise pickle.UnpicklingError(f"the pickle imports {module}.{name}, which is not on the tensor-only whitelist")


def load(path: str | os.PathLike[str]) -> Any:
    """Unpickle ``path`` with :class:`TensorOnlyUnpickler`; a refused global or a broken file is a WeightsError."""
    try:
        with open(path, "rb") as f:
            return TensorOnlyUnpickler(f).load()
    except FileNotFoundError:
        raise WeightsError(f"{path} does not exist") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"refusing to load {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                           ) from None


def module_state_dict(state: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """The ``state_dict()`` of a pickled ``nn.Module`` given its ``__dict__``: ``_parameters`` and ``_buffers``
    (skipping None entries and non-persistent buffers), recursively through ``_modules``, dotted names."""
    out: dict[str, torch.Tensor] = {}
    skip = set(state.get("_non_persistent_buffers_set", ()))
    for kind in ("_parameters", "_buffers"):
        for name, value in (state.get(kind) or {}).items():
            if value is not None and not (kind == "_buffers" and name in skip):
                out[prefix + name] = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            out.update(module_state_dict(child, f"{prefix}{name}."))
    return out
