"""Latent statistics: is the aggregate posterior Gaussian? (the seed thesis's analysis of encoded test data)

Henze & Zirkler (1990), "A class of invariant consistent tests for multivariate normality": with S the (biased)
sample covariance, Mahalanobis distances D_ij between samples and D_i to the mean, and smoothing
β = ((n(2p + 1))/4)^{1/(p+4)} / √2,

  HZ = (1/n) Σ_ij e^{−β² D_ij / 2} − 2 (1 + β²)^{−p/2} Σ_i e^{−β² D_i / (2(1 + β²))} + n (1 + 2β²)^{−p/2},

and the p-value comes from HZ's log-normal approximation with the closed-form mean and variance of the paper.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats as sps

from zoo.errors import ZooError

if TYPE_CHECKING:
    import torch


def check_hz_samples(n: int, p: int) -> None:
    """Henze-Zirkler needs n ≥ p + 2 samples in p dimensions. The statistic is affine-invariant, and any p + 1 points
    in general position are an affine image of any others (a simplex), so at n = p + 1 it takes the same value for
    every sample; below that the sample covariance is singular."""
    if n < p + 2:
        raise ZooError(f"Henze-Zirkler on {p}-dimensional codes needs at least {p + 2} samples (p + 2), got {n}: the "
                       f"test is affine-invariant, and every sample of p + 1 points or fewer gives it the same value")


def henze_zirkler(x: np.ndarray) -> dict[str, Any]:
    """HZ statistic, p-value and the usual verdict at α = 0.05 for samples ``x`` (n, p)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise ZooError(f"Henze-Zirkler needs a 2-D sample (n, p), got shape {x.shape}")
    n, p = x.shape
    check_hz_samples(n, p)
    xc = x - x.mean(0)
    cov = xc.T @ xc / n
    try:
        inv = np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        inv = None
    if inv is None or np.linalg.matrix_rank(cov) < p:
        hz = 4.0 * n  # singular covariance: the statistic's upper limit, as in the reference implementations
    else:
        di = np.einsum("ij,jk,ik->i", xc, inv, xc)
        gram = xc @ inv @ xc.T
        dij = di[:, None] + di[None, :] - 2 * gram
        b = ((n * (2 * p + 1)) / 4) ** (1 / (p + 4)) / math.sqrt(2)
        b2 = b * b
        hz = (np.exp(-b2 / 2 * dij).sum() / n - 2 * (1 + b2) ** (-p / 2) * np.exp(-b2 / (2 * (1 + b2)) * di).sum()
              + n * (1 + 2 * b2) ** (-p / 2))
    b = ((n * (2 * p + 1)) / 4) ** (1 / (p + 4)) / math.sqrt(2)
    b2, b4, b8 = b ** 2, b ** 4, b ** 8
    a = 1 + 2 * b2
    w = (1 + b2) * (1 + 3 * b2)
    mu = 1 - a ** (-p / 2) * (1 + p * b2 / a + p * (p + 2) * b4 / (2 * a ** 2))
    var = (2 * (1 + 4 * b2) ** (-p / 2) + 2 * a ** (-p) * (1 + 2 * p * b4 / a ** 2 + 3 * p * (p + 2) * b8 / (4 * a ** 4))
           - 4 * w ** (-p / 2) * (1 + 3 * p * b4 / (2 * w) + p * (p + 2) * b8 / (2 * w ** 2)))
    # log-normal with HZ's mean and variance; log1p because in many dimensions var/mu² falls below float64's
    # resolution of 1 (p = 64: ~1e-18), where log((var + mu²)/mu²) would be 0 and the p-value nan
    spread = math.log1p(var / mu ** 2)
    log_mu, log_sigma = math.log(mu) - spread / 2, math.sqrt(spread)
    pval = float(sps.lognorm.sf(hz, log_sigma, scale=math.exp(log_mu)))
    return {"hz": float(hz), "p_value": pval, "normal": pval > 0.05, "n": n, "p": p}


def latent_normality(model, *, data: Any = None, n: int = 1000, seed: int = 0,
                     batch_size: int | None = None) -> dict[str, Any]:
    """Henze-Zirkler on the encoder's mean codes of ``n`` images of ``data`` (a dataset or its name; default the
    model's own), encoded ``batch_size`` at a time."""
    from zoo import batching
    from zoo.metrics._sampling import dataset_of
    from zoo.protocol import require

    require(model, "encode", purpose="latent statistics")
    check_hz_samples(n, model.latent_spec.dim)  # before encoding anything
    x, _ = dataset_of(model, data).sample(n, seed)
    z = batching.encode(model, x, batch_size=batch_size).flatten(1).double().numpy()
    return {"model": model.display_name, **henze_zirkler(z), "per_dim_std": z.std(0).tolist()}


def pair_distances(codes: torch.Tensor, noisy: torch.Tensor, partner: torch.Tensor,
                   nearest: torch.Tensor) -> dict[str, float]:
    """Mean Euclidean distances from each code to a random other code, to the code of its noisy image and to the
    code of its nearest image, and the last two relative to the first."""
    rnd = (codes - codes[partner]).norm(dim=1).mean().item()
    if rnd == 0:
        raise ZooError("every code is the same point, so distances relative to random pairs are undefined")
    noise = (codes - noisy).norm(dim=1).mean().item()
    near = (codes - codes[nearest]).norm(dim=1).mean().item()
    return {"random": rnd, "noise": noise, "near": near, "noise_ratio": noise / rnd, "near_ratio": near / rnd}


def distance_analysis(model, *, data: Any = None, n: int = 1000, seed: int = 0, noise: float = 0.05,
                      batch_size: int | None = None) -> dict[str, Any]:
    """Table 4.2 of the seed thesis (Asperti's group, latent-space comparison of VAE/GAN/SplitVAE/StyleGAN): for
    ``n`` images of ``data`` (a dataset or its name; default the model's own), mean latent distances between random
    pairs, between an image and itself plus U(−noise, noise) pixel noise (clamped to [0, 1]), and between an image
    and its nearest neighbour among the ``n`` (exact, in pixel space; the thesis used an approximate search over the
    dataset) — next to the same distances in the image space reduced by PCA to the latent dimension, the model-free
    reference. Images are encoded ``batch_size`` at a time."""
    import torch

    from zoo import batching
    from zoo.metrics._sampling import dataset_of
    from zoo.protocol import require

    require(model, "encode", purpose="distance analysis")
    dim = model.latent_spec.dim
    if n < max(3, dim + 1):  # nearest neighbours need 3; n images span at most n - 1 dimensions
        raise ZooError(f"the distance analysis of {dim}-dimensional codes needs at least {max(3, dim + 1)} images, got "
                       f"{n}: its reference reduces the images by PCA to {dim} dimensions, and n images span at most "
                       f"n - 1")
    x, _ = dataset_of(model, data).sample(n, seed)
    g = torch.Generator().manual_seed(seed)
    x_noisy = (x + (torch.rand(x.shape, generator=g) * 2 - 1) * noise).clamp(0, 1)
    partner = (torch.arange(n) + torch.randint(1, n, (n,), generator=g)) % n  # a random *other* image
    flat, flat_noisy = x.flatten(1).double(), x_noisy.flatten(1).double()
    d2 = torch.cdist(flat, flat)
    d2.fill_diagonal_(float("inf"))
    nearest = d2.argmin(1)
    z, z_noisy = (batching.encode(model, images, batch_size=batch_size).flatten(1).double() for images in (x, x_noisy))
    mean = flat.mean(0)
    _, _, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    basis = vh[:dim].T
    pca, pca_noisy = (flat - mean) @ basis, (flat_noisy - mean) @ basis
    return {"model": model.display_name, "n": n, "noise": noise, "latent_dim": dim,
            "latent": pair_distances(z, z_noisy, partner, nearest),
            "image_pca": pair_distances(pca, pca_noisy, partner, nearest)}


def inverter_mse(model, *, n: int = 1000, seed: int = 0, batch_size: int | None = None) -> dict[str, Any]:
    """I-MSE, the inverter error of the seed thesis' Table 4.1: the mean over ``n`` draws and the latent dimensions
    of (E(D(z)) − z)², z from the model's latent distribution (StyleGAN: W, the mapping of Z draws). 0 for a perfect
    inverter. For a VAE E is the posterior mean, so a latent the model does not use (its posterior is the prior)
    is not recovered and adds about 1/d."""
    import torch

    from zoo import batching
    from zoo.protocol import require

    require(model, "encode", "decode", "sample", purpose="I-MSE")
    with torch.no_grad():
        z = model.sample_latent(n, generator=torch.Generator(model.device).manual_seed(seed))
    back = batching.encode(model, batching.decode(model, z, batch_size=batch_size), batch_size=batch_size)
    per_dim = (back - z.cpu()).double().pow(2).flatten(1).mean(0)
    return {"model": model.display_name, "n": n, "seed": seed, "latent_space": model.latent_spec.space,
            "imse": float(per_dim.mean()), "per_dim": per_dim.tolist()}


def imse_task(run, *, n: int, seed: int) -> dict[str, Any]:
    """The ``imse`` task: :func:`inverter_mse` of the run's model."""
    return inverter_mse(run.model, n=n, seed=seed, batch_size=run.batch_size)


def hz_task(run, *, n: int, seed: int) -> dict[str, Any]:
    """The ``hz`` task: :func:`latent_normality` of the run's model on the run's images."""
    return latent_normality(run.model, data=run.data, n=n, seed=seed, batch_size=run.batch_size)


def distances_task(run, *, n: int, seed: int, noise: float) -> dict[str, Any]:
    """The ``distances`` task: :func:`distance_analysis` of the run's model on the run's images."""
    return distance_analysis(run.model, data=run.data, n=n, seed=seed, noise=noise, batch_size=run.batch_size)


def stats_task(run, *, n: int, seed: int, distances: bool) -> dict[str, Any]:
    """The ``stats`` task (``zoo stats``): Henze-Zirkler, and with ``distances`` the distance analysis of the same
    images under ``"distances"``."""
    result = hz_task(run, n=n, seed=seed)
    if distances:
        result["distances"] = distance_analysis(run.model, data=run.data, n=n, seed=seed, batch_size=run.batch_size)
    return result
