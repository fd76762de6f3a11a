"""Inversion into W: the learned recoder's estimate, refined by optimising a pixel loss (Abdal et al. 2019, Image2StyleGAN;
here in plain W with MSE, starting from the encoder as in Zhu et al. 2020's in-domain inversion)."""

from __future__ import annotations

import torch
from torch import Tensor

from zoo.image import adapt


def refine(model, x: Tensor, steps: int = 200, lr: float = 0.02, w_init: Tensor | None = None) -> Tensor:
    """W codes whose decoding matches ``x`` (any size; adapted to the model) better than the recoder's.

    Deterministic: no random draws (decoding uses the fixed noise buffers)."""
    target = adapt(x, model.image_spec)
    with torch.no_grad():
        w0 = model.encode(target) if w_init is None else w_init
    w = w0.clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr=lr)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            loss = (model.decode(w) - target).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    return w.detach()
