"""Inversion by optimisation: codes whose decoding matches given images better than the encoder's estimate
(Abdal et al. 2019, "Image2StyleGAN"; started from the encoder as in Zhu et al. 2020's in-domain GAN inversion).

Works for any model with a decoder: plain gradient descent (Adam) on the pixel MSE of ``decode(z)`` against the
images, in the model's own latent space (W for StyleGAN). Deterministic: no random draws.
"""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.image import adapt
from zoo.protocol import require


def refine_codes(model, x: Tensor, steps: int = 200, lr: float = 0.02, init: Tensor | None = None) -> Tensor:
    """Latent codes for images ``x`` (any size; adapted to the model), refined for ``steps`` Adam steps from ``init``
    (default: the model's encoding of ``x``)."""
    require(model, "decode", purpose="inversion")
    target = adapt(x, model.image_spec)
    if init is None:
        require(model, "encode", purpose="inversion from the encoder's estimate (or pass init=)")
        with torch.no_grad():
            init = model.encode(target)
    z = init.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    frozen = [p for p in model.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            loss = (model.decode(z) - target).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        for p in frozen:
            p.requires_grad_(True)
    return z.detach()
