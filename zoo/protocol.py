"""The Encoder/Decoder protocol at the zoo boundary.

Images are float32 NCHW in [0, 1] at the model's ``image_spec.size``; latents are float32 ``(N, *latent_spec.shape)``.
A plugin subclasses :class:`ZooModel` and overrides only what its architecture can do; ``capabilities()`` is derived
from what it overrides, so tools can check up front and fail with one clear line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from zoo.errors import CapabilityError
from zoo.spec import ImageSpec, LatentSpec


class LatentDist(NamedTuple):
    """A diagonal Gaussian posterior q(z|x)."""

    mean: Tensor
    logvar: Tensor

    def sample(self, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + eps * torch.exp(0.5 * self.logvar)


@runtime_checkable
class Encoder(Protocol):
    image_spec: ImageSpec
    latent_spec: LatentSpec

    def encode(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class GaussianEncoder(Encoder, Protocol):
    def encode_dist(self, x: Tensor) -> LatentDist: ...


@runtime_checkable
class Decoder(Protocol):
    image_spec: ImageSpec
    latent_spec: LatentSpec

    def decode(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class Generator(Decoder, Protocol):
    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor: ...


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
            return torch.randn((n, *self.latent_spec.shape), generator=generator, device=self.device)
        raise CapabilityError(f"{self.display_name} cannot sample latents")

    def sample_prior(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """Codes of the prior space (Z); equals ``sample_latent`` unless the model has a mapping."""
        if not self.has("mapping"):
            return self.sample_latent(n, generator=generator)
        spec = self.prior_spec or self.latent_spec
        return torch.randn((n, *spec.shape), generator=generator, device=self.device)

    def map_prior(self, z: Tensor) -> Tensor:
        """Prior space → latent space (StyleGAN's mapping network Z → W)."""
        raise CapabilityError(f"{self.display_name} has no prior→latent mapping")

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        raise CapabilityError(f"{self.display_name} cannot be trained")

    def train_step(self, x: Tensor, step: int, update: UpdateFn) -> dict[str, float]:
        """One training step on images ``x``: compute losses, call ``update(optimizer_name, loss)`` for each
        optimiser, return the loss terms to log. Randomness comes from the global generator, which the engine seeds
        per step, so a resumed run repeats the same draws."""
        raise CapabilityError(f"{self.display_name} cannot be trained")

    def has(self, capability: str) -> bool:
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


def require(model: ZooModel, *capabilities: str, purpose: str = "") -> None:
    """Fail with one line if ``model`` lacks a capability, e.g. ``gan.faces64 has no encoder``."""
    for cap in capabilities:
        if not model.has(cap):
            why = f" ({purpose} needs it)" if purpose else ""
            raise CapabilityError(f"{model.display_name} has no {CAPABILITY_WORDS[cap].split(' ', 1)[1]}{why}")
