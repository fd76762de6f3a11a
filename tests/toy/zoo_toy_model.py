"""Torch side of the test plugin ``zoo_toy``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import zoo
from zoo.data.base import GroundTruthDataset


class ToyAE(zoo.ZooModel):
    """A small MLP autoencoder on 8x8 grey images; ``nan_at`` makes the loss NaN from that step on (tests)."""

    def __init__(self, latent_dim: int = 3, hidden: int = 32, channels: int = 1, image_size: int = 8,
                 nan_at: int = -1, dataset: str | None = None):
        super().__init__()
        d = channels * image_size * image_size
        self.image_spec = zoo.ImageSpec(channels, (image_size, image_size), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,))
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))
        self.dec = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.register_buffer("seen", torch.zeros(()))
        self.nan_at = nan_at

    def encode_dist(self, x):
        mean, logvar = self.enc(x).chunk(2, dim=1)
        return zoo.LatentDist(mean, logvar)

    def decode(self, z):
        c, (h, w) = self.image_spec.channels, self.image_spec.size
        return torch.sigmoid(self.dec(z)).view(-1, c, h, w)

    def configure_optimizers(self, lr=None):
        return {"ae": torch.optim.Adam(self.parameters(), lr=lr or 1e-2)}

    def train_step(self, x, step, update):
        dist = self.encode_dist(x)
        z = dist.sample()
        rec = ((self.decode(z) - x) ** 2).sum(dim=(1, 2, 3)).mean()
        kl = 0.5 * (dist.mean ** 2 + dist.logvar.exp() - 1 - dist.logvar).sum(1).mean()
        loss = rec + 0.1 * kl
        if 0 <= self.nan_at <= step:
            loss = loss * float("nan")
        update("ae", loss)
        self.seen += x.shape[0]
        return {"loss": loss.item(), "rec": rec.item(), "kl": kl.item()}


class ToyBars(GroundTruthDataset):
    """8x8 images with one vertical bar (position: 8 values) of one of 4 intensities."""

    name = "toybars"
    factor_names = ("position", "intensity")
    factor_sizes = (8, 4)
    factor_values = (np.arange(8.0), np.arange(4.0))

    def __init__(self):
        self.image_spec = zoo.ImageSpec(1, (8, 8), dataset="toybars")

    def _render(self, factors):
        f = torch.as_tensor(np.asarray(factors))
        x = torch.zeros(len(f), 1, 8, 8)
        x[torch.arange(len(f)), 0, :, f[:, 0]] = (f[:, 1:2].float() + 1) / 4
        return x
