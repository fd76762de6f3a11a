"""Frozen, torch-free descriptions of what plugins register.

Everything here is cheap to build and import, so ``zoo list`` and ``zoo plugins`` never import torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Callable

ARCH_RE = re.compile(r"^[a-z][a-z0-9_]*$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
SPACES = ("z", "w")
INTERPOLATIONS = ("lerp", "slerp")


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ImageSpec:
    """What a model consumes and produces at the zoo boundary: float32 NCHW in [0, 1]."""

    channels: int
    size: tuple[int, int]
    dataset: str | None = None
    native_range: tuple[float, float] = (0.0, 1.0)  # informational: the protocol is always [0, 1]

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"ImageSpec.channels must be 1 or 3, got {self.channels}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "native_range", tuple(float(v) for v in self.native_range))

    def to_dict(self) -> dict[str, Any]:
        return {"channels": self.channels, "size": list(self.size), "dataset": self.dataset,
                "native_range": list(self.native_range)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageSpec:
        return cls(channels=int(d["channels"]), size=tuple(d["size"]), dataset=d.get("dataset"),
                   native_range=tuple(d.get("native_range", (0.0, 1.0))))


@dataclass(frozen=True)
class LatentSpec:
    """Shape and geometry of a latent space.

    ``space`` is "z" for a prior space and "w" for StyleGAN's intermediate space; ``interpolation`` is what
    PPL uses between two codes (Karras et al.: slerp in Z, lerp in W).
    """

    shape: tuple[int, ...]
    space: str = "z"
    prior: str | None = "normal"
    interpolation: str = "lerp"

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if self.space not in SPACES:
            raise ValueError(f"LatentSpec.space must be one of {SPACES}, got {self.space!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"LatentSpec.interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")

    @property
    def dim(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "space": self.space, "prior": self.prior,
                "interpolation": self.interpolation}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatentSpec:
        return cls(shape=tuple(d["shape"]), space=d.get("space", "z"), prior=d.get("prior", "normal"),
                   interpolation=d.get("interpolation", "lerp"))


@dataclass(frozen=True)
class WeightsCfg:
    """One set of weights for an architecture (timm's pretrained cfg, trimmed).

    ``embedded`` points at a folder shipped inside a Python package, as ``"package:relative/folder"``;
    ``hf_repo`` + ``hf_revision`` (a full 40-hex commit) point at a Hub repo with the same layout.
    """

    tag: str
    embedded: str | None = None
    hf_repo: str | None = None
    hf_revision: str | None = None
    sha256: Mapping[str, str] = field(default_factory=dict)
    dataset: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not TAG_RE.match(self.tag):
            raise ValueError(f"weights tag {self.tag!r} must match {TAG_RE.pattern}")
        object.__setattr__(self, "sha256", _frozen(self.sha256))

    @property
    def available(self) -> bool:
        return bool(self.embedded or self.hf_repo)


@dataclass(frozen=True)
class ModelSpec:
    """An architecture as a plugin registers it. ``factory`` is ``"module:function"`` (imported lazily) or a
    callable returning a :class:`zoo.ZooModel`; it receives ``default_args`` updated by the weights' config."""

    arch: str
    factory: str | Callable[..., Any]
    weights: tuple[WeightsCfg, ...] = ()
    aliases: tuple[str, ...] = ()
    default_args: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str | None = None
    # source format → "module:function" converting foreign weights: ``function(src, out, **options) -> out``
    converters: Mapping[str, str | Callable[..., Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "converters", _frozen(self.converters))
        if not ARCH_RE.match(self.arch):
            raise ValueError(f"architecture name {self.arch!r} must match {ARCH_RE.pattern}")
        object.__setattr__(self, "weights", tuple(self.weights))
        object.__setattr__(self, "aliases", tuple(self.aliases))
        object.__setattr__(self, "default_args", _frozen(self.default_args))
        tags = [w.tag for w in self.weights]
        if len(set(tags)) != len(tags):
            raise ValueError(f"architecture {self.arch!r} lists a weights tag twice: {tags}")

    @property
    def default_weights(self) -> WeightsCfg | None:
        """The first tag that has weights (timm's DefaultCfg semantics), else the first tag."""
        for w in self.weights:
            if w.available:
                return w
        return self.weights[0] if self.weights else None

    def get_weights(self, tag: str | None) -> WeightsCfg | None:
        if tag is None:
            return self.default_weights
        for w in self.weights:
            if w.tag == tag:
                return w
        return None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: ``factory`` builds a :class:`zoo.data.GroundTruthDataset` (or any image dataset)."""

    name: str
    factory: str | Callable[..., Any]
    description: str = ""
    procedural: bool = True
    default_args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not ARCH_RE.match(self.name):
            raise ValueError(f"dataset name {self.name!r} must match {ARCH_RE.pattern}")
        object.__setattr__(self, "default_args", _frozen(self.default_args))


@dataclass(frozen=True)
class MetricSpec:
    """A metric on one model. ``function`` is ``"module:function"`` or a callable ``f(model, **kwargs) -> dict``."""

    name: str
    function: str | Callable[..., Any]
    description: str = ""
    needs: tuple[str, ...] = ()  # capabilities the model must have, e.g. ("encode",)

    def __post_init__(self) -> None:
        if not ARCH_RE.match(self.name):
            raise ValueError(f"metric name {self.name!r} must match {ARCH_RE.pattern}")


@dataclass(frozen=True)
class ToolSpec:
    """A tool on a pair of models, ``f(source, target, **kwargs) -> result``."""

    name: str
    function: str | Callable[..., Any]
    description: str = ""
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not ARCH_RE.match(self.name):
            raise ValueError(f"tool name {self.name!r} must match {ARCH_RE.pattern}")


def spec_to_dict(spec: Any) -> dict[str, Any]:
    """A JSON-friendly view of any spec above (callables shown by qualified name)."""
    d = asdict(spec) if not isinstance(spec, Mapping) else dict(spec)
    for k, v in list(d.items()):
        if callable(v):
            d[k] = f"{v.__module__}:{v.__qualname__}"
        elif isinstance(v, MappingProxyType):
            d[k] = dict(v)
    return d
