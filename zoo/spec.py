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
    # name prefix → "module:function" loading an outside model in place, e.g. ``diffusers:PATH_OR_REPO``:
    # ``function(target, *, device, cache_dir, offline) -> ZooModel``
    sources: Mapping[str, str | Callable[..., Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "converters", _frozen(self.converters))
        object.__setattr__(self, "sources", _frozen(self.sources))
        for prefix in self.sources:
            if not ARCH_RE.match(prefix) or prefix in ("local", "hf", "name"):
                raise ValueError(f"source prefix {prefix!r} must match {ARCH_RE.pattern}")
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


OPTION_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
TASK_MODELS = ("one", "pair", "none")
TASK_DATA = (None, "images", "factors")


@dataclass(frozen=True)
class Option:
    """A typed option of a task: ``--name-with-dashes`` on the command line, ``name=...`` from Python."""

    name: str
    type: str = "float"  # one of OPTION_TYPES
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] = ()
    min: float | None = None  # smallest allowed value (int / float options)

    def __post_init__(self) -> None:
        if not re.match(r"^[a-z][a-z0-9_]*$", self.name):
            raise ValueError(f"option name {self.name!r} must be a Python identifier in lower case")
        if self.type not in OPTION_TYPES:
            raise ValueError(f"option {self.name!r}: type must be one of {', '.join(OPTION_TYPES)}")
        object.__setattr__(self, "choices", tuple(self.choices))

    def coerce(self, value: Any, task: str) -> Any:
        """``value`` as this option's type, or a one-line error naming the option and what it takes."""
        from zoo.errors import ZooError

        if value is None:
            return None
        kind = OPTION_TYPES[self.type]
        try:
            if kind is bool and isinstance(value, str):
                value = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}[value.lower()]
            elif kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            out = kind(value)
        except (ValueError, TypeError, KeyError):
            raise ZooError(f"{task}: option {self.name!r} takes {self.type}, got {value!r}") from None
        if self.choices and out not in self.choices:
            raise ZooError(f"{task}: option {self.name!r} must be one of {', '.join(self.choices)}, got {out!r}")
        if self.min is not None and out < self.min:
            raise ZooError(f"{task}: option {self.name!r} must be at least {self.min:g}, got {out!r}")
        return out


@dataclass(frozen=True)
class TaskSpec:
    """A metric or tool any plugin can add: ``function(run, **options) -> dict`` where ``run`` is a
    :class:`zoo.tasks.TaskRun` holding the resolved models, the dataset, the device and batch size.

    ``models``: "one" (a metric of one model), "pair" (source → target, e.g. relocation) or "none".
    ``data``: what the task reads: None, "images", or "factors" (a ground-truth dataset, for disentanglement scores).
    ``needs``: capabilities every model must have (``zoo.protocol.CAPABILITY_METHODS``), checked before any work.
    ``report``: optional ``"module:function"`` printing a result for people (the CLI's view); without one the CLI
    prints a table of the result's numbers.
    """

    name: str
    function: str | Callable[..., Any]
    description: str = ""
    models: str = "one"
    data: str | None = None
    needs: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    report: str | Callable[..., Any] | None = None

    def __post_init__(self) -> None:
        if not ARCH_RE.match(self.name):
            raise ValueError(f"task name {self.name!r} must match {ARCH_RE.pattern}")
        if self.models not in TASK_MODELS:
            raise ValueError(f"task {self.name!r}: models must be one of {TASK_MODELS}, got {self.models!r}")
        if self.data not in TASK_DATA:
            raise ValueError(f"task {self.name!r}: data must be one of {TASK_DATA}, got {self.data!r}")
        object.__setattr__(self, "needs", tuple(self.needs))
        object.__setattr__(self, "options", tuple(self.options))
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"task {self.name!r} declares an option twice: {names}")

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)


@dataclass(frozen=True)
class RelocationMapSpec:
    """A way to map one latent space into another: ``fit(X, Y, *, seed) -> zoo.relocate.maps.LatentMap`` from
    corresponding source codes X (n, d_in) and target codes Y (n, d_out), float64. ``min_points(d_in)`` is the fewest
    fit points that determine it (default: d_in)."""

    name: str
    fit: str | Callable[..., Any]
    description: str = ""
    min_points: str | Callable[[int], int] | None = None

    def __post_init__(self) -> None:
        if not ARCH_RE.match(self.name):
            raise ValueError(f"relocation map name {self.name!r} must match {ARCH_RE.pattern}")


@dataclass(frozen=True)
class FitSetSpec:
    """A way to choose the correspondence set a map is fitted on: ``select(z, size, *, gains, seed) -> indices``
    into the pool's source codes ``z`` (n, d). ``uses_gains``: the selector wants each latent variable's
    reconstruction gain (the paper's support set); ``whole_pool``: it takes every pool image (``size`` ignored);
    ``generated``: the set is not chosen from real images but sampled and decoded by the source model (``select`` is
    then not called)."""

    name: str
    select: str | Callable[..., Any] | None = None
    description: str = ""
    uses_gains: bool = False
    whole_pool: bool = False
    generated: bool = False

    def __post_init__(self) -> None:
        if not ARCH_RE.match(self.name):
            raise ValueError(f"fit set name {self.name!r} must match {ARCH_RE.pattern}")


def spec_to_dict(spec: Any) -> dict[str, Any]:
    """A JSON-friendly view of any spec above (callables shown by qualified name)."""
    d = asdict(spec) if not isinstance(spec, Mapping) else dict(spec)
    for k, v in list(d.items()):
        if callable(v):
            d[k] = f"{v.__module__}:{v.__qualname__}"
        elif isinstance(v, MappingProxyType):
            d[k] = dict(v)
    return d
