"""VAE with γ-balancing (Asperti & Trentin 2020, "Balancing reconstruction error and Kullback-Leibler divergence in
Variational Autoencoders").

With a Gaussian decoder of variance γ², the negative ELBO is ``H·W·mse / (2γ²) + KL`` (+ const). γ² is not learned but
tracked as the running minimum of the batch reconstruction MSE, detached from the graph (the seed code takes the
minimum of the live tensor, which zeroes the reconstruction gradient on every new-minimum step; we use the intended
non-differentiable estimate). As reconstructions improve, the reconstruction term's weight grows, which keeps KL from
collapsing the latent space early and sharpens images late.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo_vae.nets import ConvVAEBase, kl_normal


class GammaVAE(ConvVAEBase):
    def __init__(self, latent_dim: int = 10, channels: int = 1, image_size: int = 64,
                 widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256, dataset: str | None = "dsprites",
                 lr: float = 1e-4):
        super().__init__(latent_dim, channels, image_size, widths, hidden, dataset)
        self.lr = lr
        self.register_buffer("gamma_sq", torch.tensor(float("inf")))  # saved and resumed with the weights

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        dist, _, logits = self.forward_terms(x)
        mse = (torch.sigmoid(logits) - x).pow(2).mean()
        gamma_sq = torch.minimum(self.gamma_sq, mse.detach())
        h, w = self.image_spec.size
        kl = kl_normal(dist).mean()
        return {"loss": mse * h * w / (2 * gamma_sq) + kl, "rec": mse, "kl": kl, "gamma_sq": gamma_sq}

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.parameters(), lr=lr or self.lr)}

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        terms = self.loss_terms(x)
        update("vae", terms["loss"])
        self.gamma_sq.copy_(terms["gamma_sq"])
        return {k: float(v.detach()) for k, v in terms.items()}

