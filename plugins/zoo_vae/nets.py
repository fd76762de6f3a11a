"""The convolutional encoder and decoder of disentanglement_lib (``conv_encoder`` / ``deconv_decoder``, the study
defaults of Locatello et al. 2019), in PyTorch.

Encoder: 4 × [conv 4×4 stride 2 + ReLU] with widths (32, 32, 64, 64), FC 256 + ReLU, FC 2·latent (mean, log-variance).
Decoder: FC 256 + ReLU, FC 4·4·64 + ReLU, 4 × transposed conv 4×4 stride 2 with widths (64, 32, 32, channels); it returns
logits, the model maps them to [0, 1]. Widths, hidden size, latent size and image size are arguments so the same nets
serve dSprites (1 channel, latent 10), faces64 (3 channels) and tiny test configurations.

One deliberate difference: dlib's last two encoder convolutions use 2×2 kernels ('same' padding, no overlap); here all
four are 4×4 with padding 1, so every layer halves the side the same way whatever the number of layers. The layer
widths, the 4·4·64 = 1024 flattened features and the decoder are as in dlib.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

import zoo
from zoo.errors import ZooError

DECODER_DISTS = ("bernoulli", "gaussian")


def check_geometry(image_size: int, widths: Sequence[int], latent_dim: int) -> None:
    """Every conv halves the side, so the image side must be a multiple of 2**len(widths)."""
    n = len(widths)
    if n == 0 or any(int(w) <= 0 for w in widths):
        raise ZooError(f"widths must be a non-empty list of positive channel counts, got {list(widths)}")
    if image_size <= 0 or image_size % 2 ** n:
        raise ZooError(f"image_size {image_size} is not divisible by 2**len(widths) = {2 ** n}; "
                       f"pass an image_size that is a multiple of {2 ** n} or fewer widths")
    if latent_dim <= 0:
        raise ZooError(f"latent_dim must be positive, got {latent_dim}")


class ConvEncoder(nn.Module):
    def __init__(self, channels: int, latent_dim: int, widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256,
                 image_size: int = 64):
        super().__init__()
        layers, c = [], channels
        for w in widths:
            layers += [nn.Conv2d(c, w, 4, stride=2, padding=1), nn.ReLU()]
            c = w
        side = image_size // 2 ** len(widths)
        self.conv = nn.Sequential(*layers, nn.Flatten())
        self.fc = nn.Sequential(nn.Linear(c * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))

    def forward(self, x: Tensor) -> zoo.LatentDist:
        mean, logvar = self.fc(self.conv(x)).chunk(2, dim=1)
        return zoo.LatentDist(mean, logvar)


class ConvDecoder(nn.Module):
    def __init__(self, channels: int, latent_dim: int, widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256,
                 image_size: int = 64):
        super().__init__()
        rev = list(widths)[::-1]
        self.side = image_size // 2 ** len(widths)
        self.first = rev[0]
        self.fc = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                nn.Linear(hidden, rev[0] * self.side * self.side), nn.ReLU())
        layers = []
        outs = rev[1:] + [channels]
        for i, (cin, cout) in enumerate(zip(rev, outs)):
            layers.append(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.fc(z).view(-1, self.first, self.side, self.side))


def kl_normal(dist: zoo.LatentDist) -> Tensor:
    """KL(q(z|x) ‖ N(0, I)) per sample, summed over latents."""
    return 0.5 * (dist.mean.pow(2) + dist.logvar.exp() - 1.0 - dist.logvar).sum(dim=1)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """−log p(x|z) per sample for a Bernoulli decoder (disentanglement_lib's default loss), summed over pixels."""
    return nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_nll(logits: Tensor, x: Tensor) -> Tensor:
    """Squared error of the mean image x̂ = sigmoid(logits), summed over pixels: disentanglement_lib's ``l2_loss``,
    i.e. −log N(x; x̂, ½·I) up to a constant. Meant for colour data (faces64), where a Bernoulli likelihood of
    non-binary pixels never reaches zero even for a perfect reconstruction."""
    return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(1)


def reconstruction_nll(logits: Tensor, x: Tensor, decoder_dist: str) -> Tensor:
    """Per-sample reconstruction term for ``decoder_dist`` "bernoulli" (binary images, dSprites) or "gaussian"."""
    return bernoulli_nll(logits, x) if decoder_dist == "bernoulli" else gaussian_nll(logits, x)


def check_decoder_dist(decoder_dist: str) -> str:
    if decoder_dist not in DECODER_DISTS:
        raise ZooError(f"unknown decoder_dist {decoder_dist!r}; choose one of {', '.join(DECODER_DISTS)}")
    return decoder_dist


class ConvVAEBase(zoo.ZooModel):
    """Shared encode/decode of the VAE family; subclasses define the loss and training step."""

    def __init__(self, latent_dim: int = 10, channels: int = 1, image_size: int = 64,
                 widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256, dataset: str | None = "dsprites"):
        super().__init__()
        check_geometry(image_size, widths, latent_dim)
        self.image_spec = zoo.ImageSpec(channels, (image_size, image_size), dataset=dataset)
        self.latent_spec = zoo.LatentSpec((latent_dim,), space="z", prior="normal", interpolation="slerp")
        self.encoder = ConvEncoder(channels, latent_dim, widths, hidden, image_size)
        self.decoder = ConvDecoder(channels, latent_dim, widths, hidden, image_size)

    def encode_dist(self, x: Tensor) -> zoo.LatentDist:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward_terms(self, x: Tensor) -> tuple[zoo.LatentDist, Tensor, Tensor]:
        """Posterior, a reparameterised sample (global RNG: the engine seeds it per step) and decoder logits."""
        dist = self.encoder(x)
        z = dist.mean + torch.randn_like(dist.mean) * torch.exp(0.5 * dist.logvar)
        return dist, z, self.decoder(z)
