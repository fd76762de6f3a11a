"""Choosing the correspondence set a map is fitted on.

The seed paper's *support set* (Asperti & Tonelli 2022, §5): rank the source model's latent variables by
reconstruction gain (how much the reconstruction error grows when the variable is zeroed), keep the top n, split the
space into the 2ⁿ sign sectors of those variables beyond a threshold th, and pick one random sample per non-empty
sector; the threshold is then enlarged — sectors become progressively less inhabited and the picks more extreme —
until the target size is reached (when even the first sector is empty, rounds restart at th = 0 with the points
not taken yet). Coordinates are measured in units of each variable's standard deviation over the
pool, so the same th serves VAE latents (≈ N(0, 1)) and recoder or W codes of other scales.
Alternatives: random, k-means medoids, farthest-point sampling.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from zoo.errors import ZooError

FIT_SETS = ("support", "random", "kmeans", "fps", "data", "generated")


@torch.no_grad()
def reconstruction_gain(model, images: Tensor, batch_size: int = 100) -> Tensor:
    """Mean increase of the per-image reconstruction MSE when each latent variable is set to 0, shape (d,)."""
    gains = None
    for lo in range(0, len(images), batch_size):
        x = images[lo:lo + batch_size]
        z = model.encode(x).flatten(1)
        base = (model.decode(z.view(-1, *model.latent_spec.shape)) - x).pow(2).flatten(1).mean(1)
        g = torch.empty(z.shape[1])
        for j in range(z.shape[1]):
            zj = z.clone()
            zj[:, j] = 0
            g[j] = ((model.decode(zj.view(-1, *model.latent_spec.shape)) - x).pow(2).flatten(1).mean(1) - base).sum()
        gains = g if gains is None else gains + g
    return gains / len(images)


def sector_support(z: Tensor, gains: Tensor, *, n_vars: int = 7, size: int = 150, th: float = 0.0,
                   th_step: float = 0.5, seed: int = 0) -> np.ndarray:
    """Indices into ``z`` of the support set (see the module docstring)."""
    rng = np.random.default_rng(seed)
    top = torch.argsort(gains, descending=True)[:n_vars]
    v = z.flatten(1)[:, top].double()
    v = (v / v.std(0).clamp_min(1e-12)).numpy()
    sector = ((v > 0).astype(np.int64) * (1 << np.arange(v.shape[1]))).sum(1)
    chosen: list[int] = []
    taken = np.zeros(len(v), dtype=bool)
    while len(chosen) < size and not taken.all():
        eligible = (np.abs(v) > th).all(1) & ~taken
        if not eligible.any():  # the extreme sectors are empty: go on with one more point per sector from th = 0
            th = 0.0
            eligible = ~taken
        picks = [int(rng.choice(np.flatnonzero(eligible & (sector == s)))) for s in np.unique(sector[eligible])]
        rng.shuffle(picks)
        picks = picks[:size - len(chosen)]
        chosen += picks
        taken[picks] = True
        th += th_step
    return np.array(chosen, dtype=np.int64)


def kmeans_medoids(z: Tensor, k: int, *, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Indices of the points nearest to k-means centroids (k-means++ initialisation, Lloyd iterations)."""
    x = z.flatten(1).double()
    g = torch.Generator().manual_seed(seed)
    centres = x[torch.randint(len(x), (1,), generator=g)]
    for _ in range(1, k):
        d2 = torch.cdist(x, centres).min(1).values.pow(2)
        centres = torch.cat([centres, x[torch.multinomial(d2 / d2.sum(), 1, generator=g)]])
    for _ in range(iters):
        assign = torch.cdist(x, centres).argmin(1)
        new = torch.stack([x[assign == c].mean(0) if (assign == c).any() else centres[c] for c in range(k)])
        if torch.allclose(new, centres):
            break
        centres = new
    d = torch.cdist(centres, x)
    chosen: list[int] = []
    for c in range(k):  # nearest unused point to each centre
        for i in torch.argsort(d[c]).tolist():
            if i not in chosen:
                chosen.append(i)
                break
    return np.array(chosen, dtype=np.int64)


def farthest_points(z: Tensor, k: int, *, seed: int = 0) -> np.ndarray:
    x = z.flatten(1).double()
    first = int(np.random.default_rng(seed).integers(len(x)))
    chosen = [first]
    d = torch.cdist(x, x[first:first + 1])[:, 0]
    for _ in range(1, k):
        i = int(d.argmax())
        chosen.append(i)
        d = torch.minimum(d, torch.cdist(x, x[i:i + 1])[:, 0])
    return np.array(chosen, dtype=np.int64)


def select(method: str, z: Tensor, size: int, *, gains: Tensor | None = None, seed: int = 0, **kwargs) -> np.ndarray:
    """Indices of ``size`` pool points chosen by ``method`` (support, random, kmeans, fps; data takes them all)."""
    if method != "data" and size > len(z):  # refused, not capped: the result would say fewer points than asked for
        raise ZooError(f"cannot choose {size} fit points from a pool of {len(z)}; lower n_fit or raise n_pool")
    if method == "support":
        if gains is None:
            raise ZooError("the support set needs the source model's reconstruction gains")
        return sector_support(z, gains, size=size, seed=seed, **kwargs)
    if method == "random":
        return np.random.default_rng(seed).choice(len(z), size=size, replace=False)
    if method == "kmeans":
        return kmeans_medoids(z, size, seed=seed)
    if method == "fps":
        return farthest_points(z, size, seed=seed)
    if method == "data":
        return np.arange(len(z))
    raise ZooError(f"unknown fit set {method!r}; choose one of {', '.join(FIT_SETS)}")
