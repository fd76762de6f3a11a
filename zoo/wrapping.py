"""``zoo.wrap``: plain modules or callables from a notebook → a model every zoo tool accepts, no package needed.

>>> model = zoo.wrap(encoder=my_enc, decoder=my_dec, image_spec=zoo.ImageSpec(3, (64, 64), dataset="faces64"),
...                  latent_spec=zoo.LatentSpec((32,)))
>>> zoo.run("relocate", model, "svae")

Images reach ``encoder`` as float32 NCHW in [0, 1] (or in ``image_range``, e.g. (-1, 1), if that is what it was
trained on) and ``decoder`` outputs are mapped back from ``image_range`` to [0, 1]. Modules are registered as
sub-modules, so ``.to(device)`` moves them; the wrapper's inputs are checked like every zoo model's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from zoo.errors import ZooError
from zoo.protocol import ZooModel
from zoo.spec import ImageSpec, LatentSpec


class WrappedModel(ZooModel):
    """A :class:`ZooModel` around an encoder and/or a decoder; its capabilities are what it was given."""

    def __init__(self, encoder: Callable[[Tensor], Tensor] | None, decoder: Callable[[Tensor], Tensor] | None,
                 image_spec: ImageSpec, latent_spec: LatentSpec, image_range: tuple[float, float] = (0.0, 1.0),
                 name: str = "wrapped") -> None:
        super().__init__()
        if encoder is None and decoder is None:
            raise ZooError("zoo.wrap needs an encoder, a decoder or both")
        lo, hi = (float(v) for v in image_range)
        if not hi > lo:
            raise ZooError(f"image_range must be (low, high) with high > low, got {image_range}")
        self.image_spec, self.latent_spec = image_spec, latent_spec
        self.image_range = (lo, hi)
        # modules become sub-modules (moved by .to(), saved in state_dict); other callables are kept as they are
        self.encoder = encoder if isinstance(encoder, nn.Module) else None
        self.decoder = decoder if isinstance(decoder, nn.Module) else None
        self._encode_fn, self._decode_fn = encoder, decoder
        self.arch, self.zoo_name = "wrapped", name
        self.model_args = {}
        self.declared_capabilities = frozenset({*(["encode"] * (encoder is not None)),
                                                *(["decode", "sample"] * (decoder is not None))})

    def encode(self, x: Tensor) -> Tensor:
        lo, hi = self.image_range
        z = self._encode_fn(x * (hi - lo) + lo)
        if not isinstance(z, Tensor):
            raise ZooError(f"{self.display_name}: the encoder returned {type(z).__name__}, not a tensor; wrap it in "
                           f"a function that returns the codes (e.g. lambda x: vae.encode(x).latent_dist.mean)")
        return z.reshape(len(x), *self.latent_spec.shape)

    def decode(self, z: Tensor) -> Tensor:
        lo, hi = self.image_range
        x = self._decode_fn(z)
        if not isinstance(x, Tensor):
            raise ZooError(f"{self.display_name}: the decoder returned {type(x).__name__}, not a tensor; wrap it in "
                           f"a function that returns the images")
        return ((x - lo) / (hi - lo)).clamp(0, 1)

    def sample_latent(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn((n, *self.latent_spec.shape), generator=generator).to(self.device)


def wrap(encoder: Callable[[Tensor], Tensor] | None = None, decoder: Callable[[Tensor], Tensor] | None = None, *,
         image_spec: ImageSpec | dict[str, Any], latent_spec: LatentSpec | dict[str, Any] | tuple[int, ...],
         image_range: tuple[float, float] = (0.0, 1.0), name: str = "wrapped") -> WrappedModel:
    """A zoo model from plain modules or callables (see the module docstring); in eval mode."""
    if isinstance(image_spec, dict):
        image_spec = ImageSpec.from_dict(image_spec)
    if isinstance(latent_spec, tuple):
        latent_spec = LatentSpec(latent_spec)
    elif isinstance(latent_spec, dict):
        latent_spec = LatentSpec.from_dict(latent_spec)
    return WrappedModel(encoder, decoder, image_spec, latent_spec, image_range, name).eval()
