"""A linear autoencoder: the smallest model that satisfies the whole zoo protocol."""

import torch
from torch import nn

import zoo


class LinearAE(zoo.ZooModel):
    def __init__(self, latent_dim: int = 8, channels: int = 1, image_size: int = 64, dataset: str | None = None):
        super().__init__()
        self.image_spec = zoo.ImageSpec(channels, (image_size, image_size), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,))
        d = channels * image_size * image_size
        self.encoder = nn.Linear(d, latent_dim)
        self.decoder = nn.Linear(latent_dim, d)

    def encode(self, x):
        return self.encoder(x.flatten(1))

    def decode(self, z):
        return torch.sigmoid(self.decoder(z)).view(-1, self.image_spec.channels, *self.image_spec.size)

    def configure_optimizers(self, lr=None):
        return {"ae": torch.optim.Adam(self.parameters(), lr=lr or 1e-3)}

    def train_step(self, x, step, update):
        loss = nn.functional.binary_cross_entropy(self.decode(self.encode(x)), x)
        update("ae", loss)
        return {"bce": loss.item()}


def build(**kwargs) -> LinearAE:
    return LinearAE(**kwargs)
