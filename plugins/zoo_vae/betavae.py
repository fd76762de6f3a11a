"""β-VAE (Higgins et al. 2017, "β-VAE: Learning basic visual concepts with a constrained variational framework").

Loss: reconstruction NLL (summed over pixels, averaged over the batch) + β·KL(q(z|x) ‖ N(0, I)), as in
disentanglement_lib. ``decoder_dist="bernoulli"`` (default; binary data such as dSprites) uses BCE with logits;
``"gaussian"`` uses dlib's l2 loss (squared error of the sigmoid mean), the sensible choice for colour images
(faces64). ``preset`` picks dlib's study values β ∈ {1, 2, 4, 6, 8, 16} by name ("b1" … "b16") and overrides ``beta``.
β > 1 trades reconstruction for a tighter information bottleneck: reconstruction error grows and KL falls with β.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo.errors import ZooError
from zoo_vae.nets import ConvVAEBase, check_decoder_dist, kl_normal, reconstruction_nll

PRESETS = {f"b{b}": float(b) for b in (1, 2, 4, 6, 8, 16)}


class BetaVAE(ConvVAEBase):
    def __init__(self, latent_dim: int = 10, channels: int = 1, image_size: int = 64,
                 widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256, dataset: str | None = "dsprites",
                 beta: float = 4.0, preset: str | None = None, lr: float = 1e-4, decoder_dist: str = "bernoulli"):
        super().__init__(latent_dim, channels, image_size, widths, hidden, dataset)
        if preset is not None:
            if preset not in PRESETS:
                raise ZooError(f"unknown β preset {preset!r}; choose one of {', '.join(PRESETS)}")
            beta = PRESETS[preset]
        if beta < 0:
            raise ZooError(f"beta must be non-negative, got {beta}")
        self.beta, self.lr = float(beta), lr
        self.decoder_dist = check_decoder_dist(decoder_dist)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Loss and its parts on batch ``x`` (one reparameterised draw from the global RNG)."""
        dist, _, logits = self.forward_terms(x)
        rec, kl = reconstruction_nll(logits, x, self.decoder_dist).mean(), kl_normal(dist).mean()
        return {"loss": rec + self.beta * kl, "rec": rec, "kl": kl}

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.parameters(), lr=lr or self.lr, betas=(0.9, 0.999), eps=1e-8)}

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        terms = self.loss_terms(x)
        update("vae", terms["loss"])
        return {k: float(v.detach()) for k, v in terms.items()}

