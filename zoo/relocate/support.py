"""Choosing the correspondence set a map is fitted on.

The seed paper's *support set* (Asperti & Tonelli 2022, §5): rank the source model's latent variables by
reconstruction gain (how much the reconstruction error grows when the variable is zeroed), keep the top n, split the
space into the 2ⁿ sign sectors of those variables beyond a threshold th, and pick one random sample per non-empty
sector; the threshold is then enlarged — sectors become progressively less inhabited and the picks more extreme —
until the target size is reached (when even the first sector is empty, rounds restart at th = 0 with the points
not taken yet). Coordinates are measured in units of each variable's standard deviation over the
pool, so the same th serves VAE latents (≈ N(0, 1)) and recoder or W codes of other scales.
Alternatives: random, k-means medoids, farthest-point sampling, the whole pool.

Each is registered as a fit set (``zoo.relocate.plugin``) with a selector ``select(z, size, *, gains, seed) ->
indices``; a plugin adds its own through ``zoo_register_fit_sets``, and :func:`select` looks it up.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from zoo import batching, distributed
from zoo._util import import_object
from zoo.errors import ZooError
from zoo.image import adapt
from zoo.progress import track
from zoo.spec import FitSetSpec


def reconstruction_gain(model, images: Tensor, batch_size: int | None = None) -> Tensor:
    """Mean increase of the per-image reconstruction MSE when each latent variable is set to 0, shape (d,)."""
    x = adapt(images, model.image_spec)
    z = batching.encode(model, x, batch_size=batch_size).flatten(1)

    def errors(codes: Tensor) -> Tensor:
        decoded = batching.decode(model, codes.view(-1, *model.latent_spec.shape), batch_size=batch_size)
        return (decoded - x).pow(2).flatten(1).mean(1)

    base = errors(z)

    def gains(dims: slice) -> Tensor:  # under torchrun each rank measures a shard of the latent variables
        out = torch.empty(len(range(z.shape[1])[dims]))
        for k, j in enumerate(track(range(z.shape[1])[dims],
                                    f"support set: reconstruction gain of {model.display_name}'s codes")):
            zj = z.clone()
            zj[:, j] = 0
            out[k] = (errors(zj) - base).mean()
        return out

    return distributed.map_shards(gains, z.shape[1], device=model.device)


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


# The registered selectors: ``select(z, size, *, gains, seed) -> indices`` into the pool's codes z.

def support_set(z: Tensor, size: int, *, gains: Tensor, seed: int = 0) -> np.ndarray:
    return sector_support(z, gains, size=size, seed=seed)


def random_set(z: Tensor, size: int, *, gains: Tensor | None = None, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).choice(len(z), size=size, replace=False)


def kmeans_set(z: Tensor, size: int, *, gains: Tensor | None = None, seed: int = 0) -> np.ndarray:
    return kmeans_medoids(z, size, seed=seed)


def farthest_point_set(z: Tensor, size: int, *, gains: Tensor | None = None, seed: int = 0) -> np.ndarray:
    return farthest_points(z, size, seed=seed)


def whole_pool(z: Tensor, size: int, *, gains: Tensor | None = None, seed: int = 0) -> np.ndarray:
    return np.arange(len(z))


def fit_set_spec(name: str) -> FitSetSpec:
    """The registered fit set ``name`` (any plugin's), or one line with a did-you-mean."""
    from zoo import registry

    return registry.fit_sets.get(name).spec


def select(name: str, z: Tensor, size: int, *, gains: Tensor | None = None, seed: int = 0) -> np.ndarray:
    """Indices of ``size`` pool points (rows of ``z``) chosen by the registered fit set ``name``; a whole-pool set
    takes them all. Whatever a plugin's selector returns is checked: distinct indices into the pool."""
    spec = fit_set_spec(name)
    if spec.generated:
        raise ZooError(f"the {name} fit set is sampled by the source model, not chosen from a pool")
    if not spec.whole_pool and size > len(z):  # refused, not capped: the result would say fewer points than asked
        raise ZooError(f"cannot choose {size} fit points from a pool of {len(z)}; lower n_fit or raise n_pool")
    if spec.uses_gains and gains is None:
        raise ZooError(f"the {name} set needs the source model's reconstruction gains")
    chosen = np.asarray(import_object(spec.select)(z, size, gains=gains, seed=seed))
    if chosen.size == 0:
        chosen = chosen.astype(np.int64)  # an empty choice is refused by the caller, which knows the fit sizes
    if (chosen.ndim != 1 or not np.issubdtype(chosen.dtype, np.integer) or (chosen < 0).any()
            or (chosen >= len(z)).any() or len(np.unique(chosen)) != len(chosen)):
        raise ZooError(f"fit set {name!r} returned {chosen.dtype} of shape {chosen.shape}, not distinct indices into "
                       f"the pool of {len(z)} codes; fix the plugin that registers it")
    return chosen.astype(np.int64)
