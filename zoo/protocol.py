"""The Encoder/Decoder protocol at the zoo boundary.

Images are float32 NCHW in [0, 1] at the model's ``image_spec.size``; latents are float32 ``(N, *latent_spec.shape)``.
A plugin subclasses :class:`ZooModel` and overrides only what its architecture can do; ``capabilities()`` is derived
from what it overrides, so tools can check up front and fail with one clear line.

The boundary is enforced here, for every subclass: ``ZooModel.__init_subclass__`` wraps each ``encode``,
``encode_dist``, ``decode``, ``map_prior`` and ``train_step`` a subclass defines so that the outermost call checks its
input (dtype, shape against the specs, finite values, images in [0, 1]) and raises :class:`InputError` with one line;
calls the model makes from inside those methods are not checked again. Floating inputs of another precision (numpy's
float64) are cast to the model's dtype and numpy arrays are moved to the model's device; integer images are refused.
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from zoo.errors import CapabilityError, InputError, ZooError
from zoo.spec import ImageSpec, LatentSpec


class LatentDist(NamedTuple):
    """A diagonal Gaussian posterior q(z|x)."""

    mean: Tensor
    logvar: Tensor

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + eps * torch.exp(0.5 * self.logvar)


# An optimiser step the training engine hands to ``train_step``: backward, average gradients across ranks, step.
UpdateFn = Callable[[str, Tensor], None]

# capability → the methods a plugin overrides to provide it
CAPABILITY_METHODS: dict[str, tuple[str, ...]] = {
    "encode": ("encode", "encode_dist"),
    "encode_dist": ("encode_dist",),
    "decode": ("decode",),
    "sample": ("sample_latent",),
    "mapping": ("map_prior",),
    "train": ("train_step",),
}
CAPABILITY_WORDS = {"encode": "an encoder", "encode_dist": "a Gaussian encoder", "decode": "a decoder",
                    "sample": "a latent sampler", "mapping": "a prior→latent mapping",
                    "train": "a training step"}


# --- input checks at the protocol boundary -----------------------------------------------------------------------
# Float error of resizing and colour conversion; anything further outside [0, 1] is another convention or a bug.
RANGE_TOLERANCE = 1e-3
ADAPT_HINT = "zoo.image.adapt(x, model.image_spec)"
# Inside torch.func transforms tensors are wrapped and vmap cannot read their values (torch has no public test).
_in_func_transform = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", lambda t: False)


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _shape(shape: tuple[Any, ...]) -> str:
    return f"({', '.join(map(str, shape))})"


def value_range(t: Tensor) -> tuple[float, float] | None:
    """(min, max) of ``t`` in one fused pass and one host sync, NaN if any element is NaN; None where values cannot
    be read without harm: empty or meta tensors, torch.compile / jit tracing, and inside torch.func transforms
    (vmap cannot read values; shapes are still checked there)."""
    if (t.numel() == 0 or t.device.type == "meta" or torch.compiler.is_compiling() or torch.jit.is_tracing()
            or _in_func_transform(t)):
        return None
    with torch.no_grad():
        lo, hi = torch.aminmax(t)
        lo, hi = torch.stack((lo, hi)).tolist()
    return lo, hi


def _range_advice(lo: float, hi: float) -> str:
    """The likeliest reason images lie in [lo, hi] instead of [0, 1], and its fix."""
    tol = RANGE_TOLERANCE
    if lo >= -tol and 1.5 < hi <= 255 + tol:
        return "these look like 0…255 pixels: divide by 255"
    if lo >= -1 - tol and hi <= 1 + tol:
        advice = "these look like −1…1 pixels: map them with (x + 1) / 2"
        return advice if lo < -0.5 else advice + " (or, if resizing overshot, clamp with x.clamp(0, 1))"
    if lo >= -0.5 and hi <= 1.5:
        return "slightly outside, as bicubic or antialiased resizing leaves images: clamp with x.clamp(0, 1)"
    return "rescale them to [0, 1]"


def check_image_values(x: Tensor, where: str) -> tuple[float, float] | None:
    """Raise :class:`InputError` unless ``x`` is finite and in [0, 1] (± ``RANGE_TOLERANCE``); return its range."""
    rng = value_range(x)
    if rng is None:
        return None
    lo, hi = rng
    if math.isnan(lo) or math.isnan(hi):
        raise InputError(f"{where}: images contain NaN; replace or drop those images (torch.isnan(x) finds them)")
    if math.isinf(lo) or math.isinf(hi):
        raise InputError(f"{where}: images contain ±Inf; replace or drop those images (torch.isinf(x) finds them)")
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        raise InputError(f"{where}: images must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
                         f"{_range_advice(lo, hi)}")
    return rng


def check_image_dtype(x: Tensor, where: str) -> None:
    if x.dtype == torch.uint8:
        raise InputError(f"{where}: images must be floating point in [0, 1], got uint8; convert with x.float() / 255")
    if not x.is_floating_point():
        raise InputError(f"{where}: images must be floating point in [0, 1], got {str(x.dtype).removeprefix('torch.')};"
                         f" convert with x.float() and scale to [0, 1]")


def check_images(x: Tensor, spec: ImageSpec, where: str) -> None:
    """Raise :class:`InputError` unless ``x`` is a float NCHW batch of ``spec``'s channels and size in [0, 1]."""
    check_image_dtype(x, where)
    expected = (spec.channels, *spec.size)
    if x.dim() != 4:
        fix = "; add a batch dimension with x[None]" if tuple(x.shape) == expected else ""
        raise InputError(f"{where}: expected a batch of images (N, C, H, W) = {_shape(('N', *expected))}, got "
                         f"{_shape(x.shape)}{fix}")
    if tuple(x.shape[1:]) != expected:
        raise InputError(f"{where}: expected images of {_dims(expected)} (C×H×W), got {_dims(tuple(x.shape[1:]))}; "
                         f"{ADAPT_HINT} converts channels and resizes")
    check_image_values(x, where)


def check_latents(z: Tensor, shape: tuple[int, ...], where: str, what: str = "latents") -> None:
    """Raise :class:`InputError` unless ``z`` is a finite float batch of shape (N, *shape)."""
    if not z.is_floating_point():
        raise InputError(f"{where}: {what} must be floating point, got {str(z.dtype).removeprefix('torch.')}; "
                         f"convert with z.float()")
    if z.dim() != len(shape) + 1 or tuple(z.shape[1:]) != shape:
        fix = "; add a batch dimension with z[None]" if tuple(z.shape) == shape else ""
        raise InputError(f"{where}: expected {what} of shape {_shape(('N', *shape))}, got {_shape(z.shape)}{fix}")
    rng = value_range(z)
    if rng is not None and not all(map(math.isfinite, rng)):
        raise InputError(f"{where}: {what} contain NaN or ±Inf; replace them (torch.isfinite(z) finds the good rows)")


def _floating_dtype(model: nn.Module) -> torch.dtype | None:
    for t in model.parameters():
        if t.is_floating_point():
            return t.dtype
    for t in model.buffers():
        if t.is_floating_point():
            return t.dtype
    return None


def _as_input(model: ZooModel, x: Any, where: str, what: str) -> Tensor:
    """A tensor on the model's terms: numpy arrays become tensors on its device; floating tensors of another
    precision (numpy's float64, half) are cast to its dtype, so one model serves all float inputs."""
    if not isinstance(x, Tensor):
        if not isinstance(x, np.ndarray):
            raise InputError(f"{where}: {what} must be a torch.Tensor or a numpy array, got {type(x).__name__}")
        x = torch.as_tensor(np.ascontiguousarray(x), device=model.device)
    if x.is_floating_point():
        dtype = _floating_dtype(model)
        if dtype is not None and x.dtype != dtype:
            x = x.to(dtype)
    return x


def _check_images_in(model: ZooModel, x: Any, where: str) -> Tensor:
    x = _as_input(model, x, where, "images")
    check_images(x, model.image_spec, where)
    return x


def _check_latents_in(model: ZooModel, z: Any, where: str) -> Tensor:
    z = _as_input(model, z, where, "latents")
    check_latents(z, model.latent_spec.shape, where)
    return z


def _check_prior_in(model: ZooModel, z: Any, where: str) -> Tensor:
    z = _as_input(model, z, where, "prior codes")
    check_latents(z, (model.prior_spec or model.latent_spec).shape, where, what="prior codes")
    return z


# method → (the capability it provides, the check of its first argument). What these methods call on the model inside
# (encode → encode_dist, train_step → encode_dist and decode of sampled codes) is the model's own business: unchecked.
BOUNDARY_METHODS: dict[str, tuple[str, Callable[[ZooModel, Any, str], Tensor]]] = {
    "encode": ("encode", _check_images_in),
    "encode_dist": ("encode_dist", _check_images_in),
    "decode": ("decode", _check_latents_in),
    "map_prior": ("mapping", _check_prior_in),
    "train_step": ("train", _check_images_in),  # a dataset in 0…255 must not train silently
}
_nesting = threading.local()  # per thread: how many boundary calls are running (only the outermost one checks)


def _guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with its first argument checked on the outermost boundary call of this thread."""
    capability, check = BOUNDARY_METHODS[name]
    params = list(inspect.signature(fn).parameters)
    arg_name = params[1] if len(params) > 1 else None

    @functools.wraps(fn)
    def boundary(self: ZooModel, *args: Any, **kwargs: Any) -> Any:
        depth = getattr(_nesting, "depth", 0)
        if depth == 0 and self.has(capability):  # lacking it, fn raises CapabilityError
            where = f"{self.display_name}.{name}()"
            if args:
                args = (check(self, args[0], where), *args[1:])
            elif arg_name in kwargs:
                kwargs[arg_name] = check(self, kwargs[arg_name], where)
        _nesting.depth = depth + 1
        try:
            return fn(self, *args, **kwargs)
        finally:
            _nesting.depth = depth

    boundary.__zoo_boundary__ = True  # type: ignore[attr-defined]
    return boundary


def _guard_boundary_methods(cls: type) -> None:
    """Wrap the boundary methods ``cls`` itself defines (inherited ones are wrapped already)."""
    for name in BOUNDARY_METHODS:
        fn = cls.__dict__.get(name)
        if inspect.isfunction(fn) and not getattr(fn, "__zoo_boundary__", False):
            setattr(cls, name, _guarded(name, fn))


class ZooModel(nn.Module):
    """Base class of every model ``zoo.create_model`` returns.

    Subclasses set ``image_spec`` and ``latent_spec`` in ``__init__`` and override the methods they support.
    ``components`` names sub-modules saved as ``<component>/model.safetensors`` (multi-part models); when empty the
    whole state dict goes to ``model.safetensors``.
    """

    image_spec: ImageSpec
    latent_spec: LatentSpec
    prior_spec: LatentSpec | None = None  # set by models whose latent space is not their prior space (StyleGAN W)
    components: tuple[str, ...] = ()
    arch: str = ""
    # set by the builder: name, constructor arguments and where the weights came from
    zoo_name: str = ""
    model_args: dict[str, Any]
    weights_source: str | None = None
    weights_config: dict[str, Any] | None = None
    ref: Any = None  # the zoo.ref.ModelRef it was created from

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, (Tensor, nn.Module)):
            _refuse_protocol_name(self, name, "sub-module" if isinstance(value, nn.Module) else "tensor")
        super().__setattr__(name, value)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        _refuse_protocol_name(self, name, "buffer")
        super().register_buffer(name, tensor, persistent)

    def register_parameter(self, name: str, param: nn.Parameter | None) -> None:
        _refuse_protocol_name(self, name, "parameter")
        super().register_parameter(name, param)

    def add_module(self, name: str, module: nn.Module | None) -> None:
        _refuse_protocol_name(self, name, "sub-module")
        super().add_module(name, module)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every subclass, third-party ones included, gets the input checks without doing anything."""
        super().__init_subclass__(**kwargs)
        _guard_boundary_methods(cls)

    # --- capabilities -------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Images → latent codes (posterior mean for VAEs, a point estimate for recoders)."""
        if type(self).encode_dist is not ZooModel.encode_dist:
            return self.encode_dist(x).mean
        raise CapabilityError(f"{self.display_name} has no encoder")

    def encode_dist(self, x: Tensor) -> LatentDist:
        raise CapabilityError(f"{self.display_name} has no Gaussian encoder")

    def decode(self, z: Tensor) -> Tensor:
        """Latent codes → images in [0, 1]."""
        raise CapabilityError(f"{self.display_name} has no decoder")

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Codes distributed as the model's latent distribution (N(0, I) unless overridden)."""
        if self.latent_spec.prior == "normal" and self.has("decode"):
            return _randn((n, *self.latent_spec.shape), generator, self.device)
        raise CapabilityError(f"{self.display_name} cannot sample latents")

    def sample_prior(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Codes of the prior space (Z); equals ``sample_latent`` unless the model has a mapping."""
        if not self.has("mapping"):
            return self.sample_latent(n, generator=generator)
        spec = self.prior_spec or self.latent_spec
        return _randn((n, *spec.shape), generator, self.device)

    def map_prior(self, z: Tensor) -> Tensor:
        """Prior space → latent space (StyleGAN's mapping network Z → W)."""
        raise CapabilityError(f"{self.display_name} has no prior→latent mapping")

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        """Name → optimiser. A model with a ``train_step`` but none (fitted in closed form, e.g. PCA) needs none."""
        if self.has("train"):
            return {}
        raise CapabilityError(f"{self.display_name} cannot be trained")

    def train_step(self, x: Tensor, step: int, update: UpdateFn) -> dict[str, float]:
        """One training step on images ``x``: compute losses, call ``update(optimizer_name, loss)`` for each
        optimiser, return the loss terms to log. Randomness comes from the global generator, which the engine seeds
        per step, so a resumed run repeats the same draws."""
        raise CapabilityError(f"{self.display_name} cannot be trained")

    def load_init(self, start: ZooModel) -> None:
        """Start training from the weights of ``start`` (same architecture; ``zoo train --init``). The default needs
        identical shapes; a model may accept more (StyleGAN grows a lower-resolution generator). Raises
        RuntimeError naming the first mismatch."""
        self.load_state_dict(start.state_dict(), strict=True)

    # A model whose abilities depend on its parts (a StyleGAN without a recoder, a wrapped pair of modules) declares
    # them: a set of CAPABILITY_METHODS keys. None: derived from the methods the class overrides.
    declared_capabilities: frozenset[str] | None = None

    def has(self, capability: str) -> bool:
        if capability not in CAPABILITY_METHODS:
            raise ValueError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITY_METHODS)}")
        if self.declared_capabilities is not None:
            return capability in self.declared_capabilities
        if capability == "sample":
            return self.has("decode") and (self.latent_spec.prior == "normal"
                                           or type(self).sample_latent is not ZooModel.sample_latent)
        return any(getattr(type(self), m) is not getattr(ZooModel, m) for m in CAPABILITY_METHODS[capability])

    def capabilities(self) -> set[str]:
        return {c for c in CAPABILITY_METHODS if self.has(c)}

    # --- helpers ------------------------------------------------------------------------------------
    @property
    def display_name(self) -> str:
        return self.zoo_name or self.arch or type(self).__name__

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def extra_config(self) -> dict[str, Any]:
        """Anything besides constructor arguments the model wants in config.json (rarely needed)."""
        return {}


# Attributes and methods of the protocol: a parameter, buffer or sub-module of one of these names would hide them
# (a buffer called ``components`` makes every save fail with a KeyError from deep inside torch).
PROTOCOL_NAMES = frozenset(n for n in {*vars(ZooModel), *ZooModel.__annotations__} if not n.startswith("_"))


def _refuse_protocol_name(model: nn.Module, name: str, kind: str) -> None:
    if name in PROTOCOL_NAMES:
        raise ZooError(f"{type(model).__name__}: the {kind} {name!r} is named like zoo.ZooModel.{name}, which it "
                       f"would hide; rename the {kind}, e.g. to '{type(model).__name__.lower()}_{name}'")


# The base methods too: ``encode`` delegating to a subclass's ``encode_dist`` then checks (and names) ``encode()``; a
# model lacking the capability skips the checks and gets the CapabilityError of the base method.
_guard_boundary_methods(ZooModel)


def _randn(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Normal draws from ``generator`` (on its own device, usually the CPU), moved to ``device``: the same seed gives
    the same codes whatever device the model is on."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where).to(device)


def require(model: ZooModel, *capabilities: str, purpose: str = "") -> None:
    """Fail with one line if ``model`` lacks a capability, e.g. ``gan.faces64 has no encoder``."""
    for cap in capabilities:
        if not model.has(cap):
            why = f" ({purpose} needs it)" if purpose else ""
            raise CapabilityError(f"{model.display_name} has no {CAPABILITY_WORDS[cap].split(' ', 1)[1]}{why}")
