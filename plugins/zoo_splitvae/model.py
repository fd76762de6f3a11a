"""Split-VAE (Asperti, Bugo & Filippini 2022, "Enhancing variational generation through self-decomposition"; code:
asperti/Split-VAE, the model compared in Asperti & Tonelli 2022).

Encoder: strided 3×3 convs each followed by a pre-activation ResNet scale block (BatchNorm → swish → conv, twice, plus
a 3×3 conv shortcut), global average pooling and a residual dense block to an embedding. Latent: dense μ, log σ², and a
dense map back to the embedding that feeds the decoder. Decoder: dense to 4×4, transposed convs with scale blocks, and a
final sigmoid conv with 2·C + 1 channels: a mask σ and two images, x̂ = σ·x̂₁ + (1 − σ)·x̂₂.

Loss (per sample): 0.5·Σ(x − x̂)²/γ + β·KL with β = 3, and γ = min(γ, EMA₀.₉₉ of the batch MSE), updated outside the
graph. Widths, latent size (paper: 150) and depth are arguments; the shipped CPU model is smaller (see its config).
BatchNorm momentum is 0.05 in torch's convention rather than Keras' 0.999 (0.001 here) so that short CPU trainings
end with usable running statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

import zoo

BN_MOMENTUM = 0.05


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.main = nn.Sequential(nn.BatchNorm2d(cin, momentum=BN_MOMENTUM), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
                                  nn.BatchNorm2d(cout, momentum=BN_MOMENTUM), nn.SiLU(),
                                  nn.Conv2d(cout, cout, 3, padding=1))
        self.shortcut = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.shortcut(x)


class ResFcBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.main = nn.Sequential(nn.BatchNorm1d(dim, momentum=BN_MOMENTUM), nn.SiLU(), nn.Linear(dim, dim),
                                  nn.BatchNorm1d(dim, momentum=BN_MOMENTUM), nn.SiLU(), nn.Linear(dim, dim))
        self.shortcut = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x) + self.shortcut(x)


class SplitVAE(zoo.ZooModel):
    def __init__(self, latent_dim: int = 150, channels: int = 3, image_size: int = 64,
                 widths: Sequence[int] = (64, 128, 256, 512), emb_dim: int = 512,
                 decoder_widths: Sequence[int] = (1024, 512, 256, 128, 64), beta: float = 3.0,
                 dataset: str | None = "faces64", lr: float = 1e-4):
        super().__init__()
        self.image_spec = zoo.ImageSpec(channels, (image_size, image_size), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,), space="z", prior="normal", interpolation="slerp")
        self.beta, self.lr, self.channels = float(beta), lr, channels
        enc, c = [], channels
        for i, w in enumerate(widths):
            enc.append(nn.Conv2d(c, w, 3, stride=2, padding=1))
            if i < len(widths) - 1:  # the seed's loop: no scale block at the last (4×4) scale
                enc.append(ResBlock(w, w))
            c = w
        self.encoder = nn.Sequential(*enc, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, emb_dim),
                                     ResFcBlock(emb_dim))
        self.to_mean, self.to_logvar = nn.Linear(emb_dim, latent_dim), nn.Linear(emb_dim, latent_dim)
        self.to_emb = nn.Linear(latent_dim, emb_dim)
        self.side = image_size // 2 ** (len(decoder_widths) - 1)
        self.first = decoder_widths[0]
        self.fc = nn.Linear(emb_dim, decoder_widths[0] * self.side ** 2)
        dec = []
        for cin, cout in zip(decoder_widths[:-1], decoder_widths[1:]):
            dec += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1), ResBlock(cout, cout)]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(decoder_widths[-1], 2 * channels + 1, 3, padding=1))
        self.register_buffer("gamma", torch.tensor(1.0))
        self.register_buffer("mse_ema", torch.tensor(1.0))

    def encode_dist(self, x: Tensor) -> zoo.LatentDist:
        emb = self.encoder(x)
        return zoo.LatentDist(self.to_mean(emb), self.to_logvar(emb))

    def card_rows(self, images: Tensor) -> dict[str, Tensor]:
        """For `zoo ship`: the two images and the mask each reconstruction is composed of."""
        _, x1, x2, sigma = self.split_decode(self.encode(images))
        return {"x1": x1, "x2": x2, "sigma": sigma}

    def split_decode(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(x̂, x̂₁, x̂₂, σ) — the image and the two components and mask it is made of."""
        out = torch.sigmoid(self.decoder(self.fc(self.to_emb(z)).view(-1, self.first, self.side, self.side)))
        sigma, x1, x2 = out[:, :1], out[:, 1:1 + self.channels], out[:, 1 + self.channels:]
        return sigma * x1 + (1 - sigma) * x2, x1, x2, sigma

    def decode(self, z: Tensor) -> Tensor:
        return self.split_decode(z)[0]

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        dist = self.encode_dist(x)
        z = dist.mean + torch.randn_like(dist.mean) * torch.exp(0.5 * dist.logvar)
        x_hat = self.decode(z)
        sq = (x - x_hat).pow(2)
        rec = 0.5 * sq.flatten(1).sum(1).mean() / self.gamma
        kl = 0.5 * (dist.mean.pow(2) + dist.logvar.exp() - 1 - dist.logvar).sum(1).mean()
        return {"loss": rec + self.beta * kl, "mse": sq.mean(), "kl": kl}

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        return {"vae": torch.optim.Adam(self.parameters(), lr=lr or self.lr)}

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        terms = self.loss_terms(x)
        update("vae", terms["loss"])
        with torch.no_grad():  # γ: running minimum of an EMA of the batch MSE, outside the graph
            self.mse_ema.mul_(0.99).add_(0.01 * terms["mse"])
            self.gamma.copy_(torch.minimum(self.gamma, self.mse_ema))
        return {**{k: float(v.detach()) for k, v in terms.items()}, "gamma": float(self.gamma)}
