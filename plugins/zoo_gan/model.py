"""Vanilla GAN and its recoder, after the seed paper's appendix (Asperti & Tonelli 2022, "Comparing the latent space
of generative models"; code: asperti/We_love_latent_space, lib/GAN.py).

Generator: Dense → 8×8×c0, three transposed convs (k4, s2) with LeakyReLU(0.2) whose widths *grow* towards the output
as in the seed code, then Conv k5 + sigmoid. Discriminator and recoder: strided conv trunks (k4, s2, LeakyReLU 0.2),
Dropout(0.2), and Dense(1) (a logit) or Dense(latent) (linear). Widths are arguments; the seed uses (128, 256, 512),
the shipped CPU model smaller ones (see its config).

The recoder makes the GAN an encoder: it is trained on freshly generated samples to predict their latent (MSE in
latent space) while the generator is frozen for that loss, in the same ``train_step``.
Deviations (documented for honesty): standard labels (real = 1) instead of the seed's reversed labels, no label noise,
Adam(2e-4, β=(0.5, 0.999)) — DCGAN's settings, which converge faster in short CPU runs — and a lazy R1 penalty on
the discriminator (Mescheder et al. 2018, γ = ``r1_gamma``, every 4 steps): without it the small CPU discriminator
wins within a few hundred steps and the generator stops learning; and BatchNorm after each transposed conv of the
generator (DCGAN), without which the short runs collapsed to one image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

import zoo


def conv_trunk(channels: int, widths: Sequence[int], image_size: int) -> tuple[nn.Sequential, int]:
    layers, c = [], channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        c = w
    side = image_size // 2 ** len(widths)
    return nn.Sequential(*layers, nn.Flatten(), nn.Dropout(0.2)), c * side * side


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, widths: Sequence[int], image_size: int, seed_channels: int):
        super().__init__()
        self.side = image_size // 2 ** len(widths)
        self.seed_channels = seed_channels
        self.fc = nn.Sequential(nn.Linear(latent_dim, seed_channels * self.side ** 2), nn.ReLU())
        layers, c = [], seed_channels
        for w in widths:
            layers += [nn.ConvTranspose2d(c, w, 4, stride=2, padding=1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            c = w
        self.net = nn.Sequential(*layers, nn.Conv2d(c, channels, 5, padding=2))

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.net(self.fc(z).view(-1, self.seed_channels, self.side, self.side)))


class Critic(nn.Module):
    """A conv trunk and a linear head: the discriminator (1 logit) or the recoder (latent_dim outputs)."""

    def __init__(self, channels: int, widths: Sequence[int], image_size: int, out_dim: int):
        super().__init__()
        self.trunk, features = conv_trunk(channels, widths, image_size)
        self.head = nn.Linear(features, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trunk(x))


class GAN(zoo.ZooModel):
    components = ("generator", "discriminator", "recoder")

    def __init__(self, latent_dim: int = 64, channels: int = 3, image_size: int = 64,
                 gen_widths: Sequence[int] = (128, 256, 512), disc_widths: Sequence[int] = (128, 256, 512),
                 recoder_widths: Sequence[int] = (128, 256, 512), seed_channels: int = 16,
                 dataset: str | None = "faces64", lr: float = 2e-4, recoder_lr: float = 1e-3, r1_gamma: float = 5.0):
        super().__init__()
        self.image_spec = zoo.ImageSpec(channels, (image_size, image_size), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,), space="z", prior="normal", interpolation="slerp")
        self.generator = Generator(latent_dim, channels, gen_widths, image_size, seed_channels)
        self.discriminator = Critic(channels, disc_widths, image_size, 1)
        self.recoder = Critic(channels, recoder_widths, image_size, latent_dim)
        self.lr, self.recoder_lr, self.r1_gamma = lr, recoder_lr, r1_gamma

    def decode(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def encode(self, x: Tensor) -> Tensor:
        return self.recoder(x)

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        lr = lr or self.lr
        return {"disc": torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(0.5, 0.999)),
                "gen": torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.5, 0.999)),
                "recoder": torch.optim.Adam(self.recoder.parameters(), lr=self.recoder_lr)}

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        bce = nn.functional.binary_cross_entropy_with_logits
        n = x.shape[0]
        ones, zeros = torch.ones(n, 1, device=x.device), torch.zeros(n, 1, device=x.device)
        fake = self.generator(torch.randn(n, *self.latent_spec.shape, device=x.device))
        d_loss = bce(self.discriminator(x), ones) + bce(self.discriminator(fake.detach()), zeros)
        logs = {"d_loss": float(d_loss.detach())}
        if self.r1_gamma > 0 and step % 4 == 0:  # lazy R1 on real images (Mescheder et al. 2018)
            real = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.discriminator(real).sum(), real, create_graph=True)
            r1 = grad.square().flatten(1).sum(1).mean()
            d_loss = d_loss + r1 * self.r1_gamma / 2 * 4
            logs["r1"] = float(r1.detach())
        update("disc", d_loss)
        g_loss = bce(self.discriminator(fake), ones)
        update("gen", g_loss)
        with torch.no_grad():  # the recoder learns to invert the current generator on fresh samples
            z = torch.randn(n, *self.latent_spec.shape, device=x.device)
            xz = self.generator(z)
        r_loss = (self.recoder(xz) - z).pow(2).mean()
        update("recoder", r_loss)
        return {**logs, "g_loss": float(g_loss.detach()), "recoder_mse": float(r_loss.detach())}

    def card_numbers(self, images: Tensor) -> dict[str, float]:
        """For `zoo ship`: the recoder's latent error on as many fresh generated samples as held-out images."""
        from zoo.metrics.stats import inverter_mse

        imse = inverter_mse(self, n=len(images), seed=1)["imse"]
        return {f"recoder I-MSE ({len(images):,} generated samples)": imse}
