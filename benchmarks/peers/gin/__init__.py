"""A minimal stand-in for gin-config, enough for disentanglement_lib's metric modules (see ../README.md).

``@gin.configurable("scope", blacklist=...)`` wraps a function so that every argument the caller leaves out is
taken from ``bind_parameter("scope.arg", value)``; an argument whose default is ``REQUIRED`` and that nobody bound
raises, as gin does.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

REQUIRED: Any = object()
_bindings: dict[str, Any] = {}


def bind_parameter(key: str, value: Any) -> None:
    _bindings[key] = value


def clear_config() -> None:
    _bindings.clear()


def _wrap(fn, scope: str):
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def configured(*args, **kwargs):
        given = signature.bind_partial(*args, **kwargs).arguments
        for name, param in signature.parameters.items():
            if name in given:
                continue
            key = f"{scope}.{name}"
            if key in _bindings:
                kwargs[name] = _bindings[key]
            elif param.default is REQUIRED:
                raise TypeError(f"gin stub: {key} is REQUIRED; call gin.bind_parameter({key!r}, value)")
        return fn(*args, **kwargs)

    return configured


def configurable(name=None, *args, **kwargs):
    """``@configurable``, ``@configurable("scope")`` or ``@configurable("scope", blacklist=[...])``."""
    if callable(name):
        return _wrap(name, name.__name__)
    return lambda fn: _wrap(fn, name or fn.__name__)
