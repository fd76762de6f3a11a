"""FactorVAE (Kim & Mnih 2018, "Disentangling by Factorising").

VAE loss + γ·TC, where the total correlation TC(z) = KL(q(z) ‖ Π_j q(z_j)) is estimated by a discriminator D that
tells codes z ~ q(z) (class 0, "real") from codes whose dimensions were permuted independently across the batch
(class 1, samples of Π_j q(z_j)). With D's two logits, TC ≈ mean(logit₀(z) − logit₁(z)) = mean log D(z)/(1 − D(z)),
D(z) = softmax(logits)₀ (disentanglement_lib's estimator; permutation within the same batch, as dlib does).

The discriminator is trained on *detached* codes in its own step, after the VAE step, with its own optimiser: no graph
is reused after an optimiser step (the in-place autograd error of older ports on current torch) and its loss sends no
gradient into the encoder. During the VAE step the discriminator's weights are frozen, so the γ·TC term moves only the
encoder. The reconstruction term follows ``decoder_dist`` as in :mod:`zoo_vae.betavae`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from zoo.errors import CapabilityError, ZooError
from zoo_vae.nets import ConvVAEBase, check_decoder_dist, kl_normal, reconstruction_nll


def permute_dims(z: Tensor) -> Tensor:
    """Shuffle each latent dimension independently across the batch (global RNG, seeded per step by the engine)."""
    n = z.shape[0]
    return torch.stack([z[torch.randperm(n, device=z.device), j] for j in range(z.shape[1])], dim=1)


class Discriminator(nn.Module):
    """MLP with LeakyReLU(0.2) and two logits (dlib: 6 × 1000 units; smaller widths for CPU-sized models)."""

    def __init__(self, latent_dim: int, width: int = 1000, depth: int = 6):
        super().__init__()
        if width <= 0 or depth < 0:
            raise ZooError(f"disc_width must be positive and disc_depth non-negative, got {width} and {depth}")
        layers, d = [], latent_dim
        for _ in range(depth):
            layers += [nn.Linear(d, width), nn.LeakyReLU(0.2)]
            d = width
        self.net = nn.Sequential(*layers, nn.Linear(d, 2))

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class FactorVAE(ConvVAEBase):
    def __init__(self, latent_dim: int = 10, channels: int = 1, image_size: int = 64,
                 widths: Sequence[int] = (32, 32, 64, 64), hidden: int = 256, dataset: str | None = "dsprites",
                 gamma: float = 10.0, disc_width: int = 1000, disc_depth: int = 6, lr: float = 1e-4,
                 disc_lr: float = 1e-4, decoder_dist: str = "bernoulli", discriminator: bool = True):
        super().__init__(latent_dim, channels, image_size, widths, hidden, dataset)
        if gamma < 0:
            raise ZooError(f"gamma (the TC weight) must be non-negative, got {gamma}")
        self.gamma, self.lr, self.disc_lr = float(gamma), lr, disc_lr
        self.decoder_dist = check_decoder_dist(decoder_dist)
        self.discriminator = Discriminator(latent_dim, disc_width, disc_depth) if discriminator else None
        if not discriminator:  # weights for use, not training: dlib's 6 x 1000 discriminator is 20 MB of 23
            self.declared_capabilities = frozenset(self.capabilities() - {"train"})

    def loss_terms(self, x: Tensor) -> dict[str, Tensor]:
        """VAE loss and its parts on batch ``x``, plus the discriminator's view of the codes: ``tc`` (the estimate the
        loss uses), ``d_real`` = mean D(z) and ``d_perm`` = mean D(permuted z), where D is the probability of "real";
        an undecided discriminator gives 0.5 for both. ``z`` (the sampled codes) feeds the discriminator step."""
        if self.discriminator is None:
            raise CapabilityError(f"{self.display_name} was saved without its discriminator (weights for use); its "
                                  f"TC term needs one: `zoo train factorvae --init {self.display_name}` gives it a "
                                  f"fresh one")
        dist, z, logits = self.forward_terms(x)
        rec, kl = reconstruction_nll(logits, x, self.decoder_dist).mean(), kl_normal(dist).mean()
        d_z = self.discriminator(z)
        tc = (d_z[:, 0] - d_z[:, 1]).mean()  # logit of "real" minus logit of "permuted"
        with torch.no_grad():  # D(z) once: the TC term's logits are also its view of the real codes
            p_real = torch.softmax(d_z.detach(), 1)[:, 0].mean()
            p_perm = torch.softmax(self.discriminator(permute_dims(z.detach())), 1)[:, 0].mean()
        return {"loss": rec + kl + self.gamma * tc, "rec": rec, "kl": kl, "tc": tc, "d_real": p_real,
                "d_perm": p_perm, "z": z}

    def discriminator_loss(self, z: Tensor) -> Tensor:
        """Cross-entropy of D on real (class 0) and permuted (class 1) codes, half each; ``z`` is detached."""
        z = z.detach()
        target_real = torch.zeros(len(z), dtype=torch.long, device=z.device)
        ce = nn.functional.cross_entropy
        return 0.5 * (ce(self.discriminator(z), target_real) + ce(self.discriminator(permute_dims(z)),
                                                                   target_real + 1))

    def load_init(self, start: ConvVAEBase) -> None:
        """``zoo train --init`` from weights saved without a discriminator (the shipped ones): the encoder and
        decoder are copied and the discriminator starts fresh."""
        if getattr(start, "discriminator", True) is not None or self.discriminator is None:
            return super().load_init(start)
        missing, unexpected = self.load_state_dict(start.state_dict(), strict=False)
        if unexpected or any(not k.startswith("discriminator.") for k in missing):
            raise RuntimeError(f"{start.display_name}'s encoder and decoder do not fit this model (same --arg sizes?)")

    def without_training_parts(self) -> FactorVAE:
        """What ``zoo ship`` publishes: the encoder and decoder, without the discriminator only training needs."""
        return self if self.discriminator is None else without_discriminator(self)

    def configure_optimizers(self, lr: float | None = None) -> dict[str, torch.optim.Optimizer]:
        vae_params = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {"vae": torch.optim.Adam(vae_params, lr=lr or self.lr, betas=(0.9, 0.999)),
                "disc": torch.optim.Adam(self.discriminator.parameters(), lr=self.disc_lr, betas=(0.5, 0.9))}

    def train_step(self, x: Tensor, step: int, update) -> dict[str, float]:
        self.discriminator.requires_grad_(False)  # the γ·TC gradient reaches the encoder through D, not D itself
        try:
            terms = self.loss_terms(x)
            update("vae", terms["loss"])
        finally:
            self.discriminator.requires_grad_(True)
        d_loss = self.discriminator_loss(terms.pop("z"))
        update("disc", d_loss)
        return {**{k: float(v.detach()) for k, v in terms.items()}, "d_loss": float(d_loss.detach())}



def without_discriminator(model: FactorVAE) -> FactorVAE:
    """The same encoder and decoder without the discriminator, which only training needs (weights to ship)."""
    import zoo

    bare = zoo.build_model("factorvae", {**model.model_args, "discriminator": False})
    bare.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("discriminator.")})
    return bare.to(model.device).eval()
