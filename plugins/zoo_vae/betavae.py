"""β-VAE (Higgins et al. 2017, "β-VAE: Learning basic visual concepts with a constrained variational framework").

Loss: Bernoulli reconstruction NLL (summed over pixels) + β·KL, as in disentanglement_lib. ``preset`` picks dlib's
study values β ∈ {1, 2, 4, 6, 8, 16} by name ("b1" … "b16").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo.errors import ZooError
from zoo_vae.nets import ConvVAEBase, bernoulli_nll, kl_normal

PRESETS = {f"b{b}": float(b) for b in (1, 2, 4, 6, 8, 16)}


class BetaVAE(ConvVAEBase):
    def __init__(self, latent_dim: int = 10, channels: int = 1, image_size: int = 64,
                 widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256, dataset: str | None = "dsprites",
                 beta: float = 4.0, preset: str | None = None, lr: float = 1e-4):
        super().__init__(latent_dim, channels, image_size, widths, hidden, dataset)
        if preset is not None:
            if preset not in PRESETS:
                raise ZooError(f"unknown β preset {preset!r}; choose one of {', '.join(PRESETS)}")
            beta = PRESETS[preset]
        self.beta, self.lr = float(beta), lr

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        dist, _, logits = self.forward_terms(x)
        rec, kl = bernoulli_nll(logits, x).mean(), kl_normal(dist).mean()
        return {"loss": rec + self.beta * kl, "rec": rec, "kl": kl}

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.parameters(), lr=lr or self.lr, betas=(0.9, 0.999), eps=1e-8)}

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        terms = self.loss_terms(x)
        update("vae", terms["loss"])
        return {k: float(v.detach()) for k, v in terms.items()}

