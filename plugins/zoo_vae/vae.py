"""VAE with γ-balancing (Asperti & Trentin 2020, "Balancing reconstruction error and Kullback-Leibler divergence in
Variational Autoencoders").

With a Gaussian decoder of variance γ², the negative ELBO is ``H·W·mse / (2γ²) + KL`` (+ const), where ``mse`` is the
per-element mean squared error of the batch (H·W, not H·W·C, as in the seed code). γ² is not learned but tracked,
detached from the graph, as a running minimum of the estimated reconstruction error:

- ``gamma_ema=0`` (default): γ²_t = min(γ²_{t−1}, mse_t), the seed repository's vanilla-VAE rule;
- ``gamma_ema=0.99``: γ²_t = min(γ²_{t−1}, 0.99·γ²_{t−1} + 0.01·mse_t), Asperti & Trentin's smoothed estimate, which
  one lucky batch cannot drag down.

The seed code takes the minimum of the live tensor, which zeroes the reconstruction gradient on every new-minimum
step; we use the intended non-differentiable estimate. As reconstructions improve the reconstruction term's weight
grows, which keeps KL from collapsing the latent space early and sharpens images late. γ² is a buffer, so it is saved
with the weights and restored on resume.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from zoo.errors import ZooError
from zoo_vae.nets import ConvVAEBase, kl_normal


class GammaVAE(ConvVAEBase):
    def __init__(self, latent_dim: int = 10, channels: int = 1, image_size: int = 64,
                 widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256, dataset: str | None = "dsprites",
                 lr: float = 1e-4, gamma_ema: float = 0.0):
        super().__init__(latent_dim, channels, image_size, widths, hidden, dataset)
        if not 0.0 <= gamma_ema < 1.0:
            raise ZooError(f"gamma_ema must be in [0, 1), got {gamma_ema} (0: running min of batch MSE; "
                           f"0.99: Asperti & Trentin's smoothed minimum)")
        self.lr, self.gamma_ema = lr, float(gamma_ema)
        self.register_buffer("gamma_sq", torch.tensor(float("inf")))  # saved and resumed with the weights

    def next_gamma_sq(self, mse: Tensor) -> Tensor:
        """γ² after seeing a batch with reconstruction MSE ``mse`` (detached: no gradient flows into γ²)."""
        mse = mse.detach()
        if self.gamma_ema == 0.0 or not torch.isfinite(self.gamma_sq):
            estimate = mse  # the first batch starts the estimate
        else:
            estimate = self.gamma_ema * self.gamma_sq + (1.0 - self.gamma_ema) * mse
        return torch.minimum(self.gamma_sq, estimate)

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """Loss and its parts on batch ``x`` (one reparameterised draw from the global RNG); does not update γ²."""
        dist, _, logits = self.forward_terms(x)
        mse = (torch.sigmoid(logits) - x).pow(2).mean()
        gamma_sq = self.next_gamma_sq(mse)
        h, w = self.image_spec.size
        kl = kl_normal(dist).mean()
        return {"loss": mse * h * w / (2 * gamma_sq) + kl, "rec": mse, "kl": kl, "gamma_sq": gamma_sq}

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.parameters(), lr=lr or self.lr, betas=(0.9, 0.999), eps=1e-8)}

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        terms = self.loss_terms(x)
        update("vae", terms["loss"])
        self.gamma_sq.copy_(terms["gamma_sq"])
        return {k: float(v.detach()) for k, v in terms.items()}
