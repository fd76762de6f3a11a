"""Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for GANs"; StyleGAN2 defaults).

PPL = E[d(G(path(t)), G(path(t + ε))) / ε²] with ε = 1e-4, t ~ U(0, 1) (``sampling="full"``) or t = 0 (``"end"``),
the 1 % and 99 % percentiles discarded. ``space="z"`` interpolates in the prior space by slerp of the normalised
codes (NVIDIA); the interpolated direction is rescaled by the lerp of the two norms so that models without a
normalising mapping (VAEs, GANs) are decoded at in-distribution radii — for StyleGAN, whose mapping starts with pixel
norm, this is exactly NVIDIA's path. ``space="w"`` lerps in W (StyleGAN only).

The distance is pluggable (:mod:`zoo.metrics.distances`). The default is **pixel-space squared L2, as a mean over
pixels** ("pixel_sq_l2"); it is not LPIPS and its numbers are not comparable to published PPL. ``lpips_vgg16``
(NVIDIA's choice) and ``timm:<model>`` need weight files the user supplies. Everything runs in float32 with TF32 off:
the 1/ε² scaling amplifies rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from zoo import batching, distributed
from zoo.errors import CapabilityError, ZooError
from zoo.metrics.distances import Distance, get_distance
from zoo.protocol import require

DistanceArg = str | Distance


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of the directions of a and b, at the lerp of their norms (codes of any shape
    ``(N, …)``: spatial latents are interpolated as vectors)."""
    if a.dim() > 2:
        return slerp(a.flatten(1), b.flatten(1), t).view_as(a)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na, b / nb
    t = t.view(-1, 1)
    d = (ua * ub).sum(-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = ub - d * ua
    c = c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (ua * torch.cos(p) + c * torch.sin(p)) * torch.lerp(na, nb, t)


def path_fn(model, space: str) -> Callable[[Tensor, Tensor, Tensor], Tensor]:
    """(endpoint codes a, b, t) → latent codes the decoder takes, along the interpolation path of ``space``."""
    mapping = model.has("mapping")
    if space == "w":
        if not mapping:
            raise CapabilityError(f"{model.display_name} has no W space (only models with a mapping do); use --space z")
        return lambda w0, w1, t: torch.lerp(w0, w1, t.view(-1, *[1] * (w0.dim() - 1)))
    if space == "z":
        return (lambda z0, z1, t: model.map_prior(slerp(z0, z1, t))) if mapping else slerp
    raise ZooError(f"--space must be z or w, got {space!r}")


# Paths are drawn this many at a time (endpoints a, then c, then t): zoo's PPL stream since its first release, kept
# fixed so that the paths, and the result, depend on the seed only and not on the batch size they are decoded in.
PATH_CHUNK = 100


def draw_paths(model, n: int, seed: int, sampling: str) -> tuple[Tensor, Tensor, Tensor]:
    """The ``n`` paths of ``seed``: prior endpoints ``a``, ``c`` (n, *prior shape) and ``t`` (n,), on the CPU; drawn
    from a CPU ``torch.Generator`` so that every device sees the same paths."""
    g = torch.Generator().manual_seed(seed)
    a, c, t = [], [], []
    for lo in range(0, n, PATH_CHUNK):
        b = min(PATH_CHUNK, n - lo)
        a.append(model.sample_prior(b, generator=g).cpu())
        c.append(model.sample_prior(b, generator=g).cpu())
        t.append(torch.rand(b, generator=g) * (1.0 if sampling == "full" else 0.0))
    return torch.cat(a), torch.cat(c), torch.cat(t)


def over_paths(model, space: str, sampling: str, n: int, seed: int,
               per_batch: Callable[[Tensor, Tensor, Tensor], Tensor], batch_size: int | None = None,
               label: str | None = None) -> Tensor:
    """``per_batch(a, c, t)`` over the paths of ``seed`` in batches on the model's device (:mod:`zoo.batching`), the
    endpoints ``a``, ``c`` in the space of ``space`` (mapped to W for "w"); the outputs concatenated on the CPU.

    Under torchrun every rank draws all ``n`` paths, runs its shard of whole batches (each decoded exactly as one
    process decodes it) and returns every rank's outputs in path order (:mod:`zoo.distributed`): every rank must
    call it."""
    a, c, t = draw_paths(model, n, seed, sampling)
    shape, d = a.shape[1:], a[0].numel()

    def batch(p: Tensor) -> Tensor:  # p: rows (a, c, t) packed into one tensor, which the batching helper carries
        a, c = p[:, :d].view(-1, *shape), p[:, d:2 * d].view(-1, *shape)
        if space == "w":
            a, c = model.map_prior(a), model.map_prior(c)
        return per_batch(a, c, p[:, -1])

    packed = torch.cat([a.flatten(1), c.flatten(1), t[:, None]], 1)
    batch_size = batch_size or batching.default_batch_size(model.device)
    mine = distributed.shard(n, block=batch_size)
    values = batching.map_batches(batch, packed[mine], batch_size=batch_size, device=model.device,
                                  label=label if distributed.is_main() else None)
    return distributed.gather_rows(values, device=model.device)


def _check(model, sampling: str, distance: DistanceArg, weights: Any = None) -> Distance:
    require(model, "decode", purpose="PPL")
    if sampling not in ("full", "end"):
        raise ZooError(f"--sampling must be full or end, got {sampling!r}")
    return distance if isinstance(distance, Distance) else get_distance(distance, weights)


def _crop(x: Tensor) -> Tensor:
    h, w = x.shape[-2:]
    return x[..., h // 8: h * 5 // 8, w // 4: w * 3 // 4]


def ppl_samples(model, *, space: str = "z", sampling: str = "end", n: int = 2000, epsilon: float = 1e-4,
                batch_size: int | None = None, seed: int = 0, distance: DistanceArg = "pixel_sq_l2",
                distance_weights: Any = None, crop: bool = False) -> np.ndarray:
    """The ``n`` per-path values d(G(path(t)), G(path(t + ε))) / ε², before the percentile discard; decoded
    ``batch_size`` paths at a time (default: per device)."""
    dist = _check(model, sampling, distance, distance_weights).to(model.device)
    path = path_fn(model, space)

    def per_batch(a: Tensor, c: Tensor, t: Tensor) -> Tensor:
        x0, x1 = model.decode(path(a, c, t)).float(), model.decode(path(a, c, t + epsilon)).float()
        if crop:
            x0, x1 = _crop(x0), _crop(x1)
        return (dist(x0, x1) / epsilon ** 2).double()

    tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        values = over_paths(model, space, sampling, n, seed, per_batch, batch_size, label=f"PPL ({space}, {sampling})")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return values.numpy()


def perceptual_path_length(model, *, space: str = "z", sampling: str = "end", n: int = 2000, epsilon: float = 1e-4,
                           batch_size: int | None = None, seed: int = 0, distance: DistanceArg = "pixel_sq_l2",
                           distance_weights: Any = None, crop: bool = False) -> dict[str, Any]:
    """PPL of ``model`` over ``n`` random paths (see the module docstring). ``crop`` keeps the central face region
    (NVIDIA's FFHQ crop: rows 1/8–5/8, columns 1/4–3/4 of the image)."""
    dist = _check(model, sampling, distance, distance_weights)
    d = ppl_samples(model, space=space, sampling=sampling, n=n, epsilon=epsilon, batch_size=batch_size, seed=seed,
                    distance=dist, crop=crop)
    lo, hi = np.percentile(d, 1, method="lower"), np.percentile(d, 99, method="higher")
    kept = d[(d >= lo) & (d <= hi)]
    return {"ppl": float(kept.mean()), "space": space, "sampling": sampling, "epsilon": epsilon, "n": n,
            "distance": dist.name, "distance_files": dist.files, "crop": crop}


def ppl_task(run, *, space: str, sampling: str, n: int, epsilon: float, crop: bool, seed: int, distance: str,
             distance_weights: str | None) -> dict[str, Any]:
    """The ``ppl`` task: :func:`perceptual_path_length` of the run's model, decoded in the run's batches."""
    return {"model": run.model.display_name,
            **perceptual_path_length(run.model, space=space, sampling=sampling, n=n, epsilon=epsilon, crop=crop,
                                     seed=seed, distance=distance, distance_weights=distance_weights,
                                     batch_size=run.batch_size)}


def jvp_path_length(model, *, space: str = "z", sampling: str = "end", n: int = 200, seed: int = 0,
                    batch_size: int | None = None, distance: DistanceArg = "pixel_sq_l2", distance_weights: Any = None,
                    crop: bool = False) -> np.ndarray:
    """The ε → 0 limit of :func:`ppl_samples` (the same paths for the same seed): ‖d φ(G(path(t)))/dt‖² from
    forward-mode JVPs through the distance's embedding φ — no ε, no rounding amplification."""
    from torch.func import jvp

    dist = _check(model, sampling, distance, distance_weights).to(model.device)
    path = path_fn(model, space)

    def per_batch(a: Tensor, c: Tensor, t: Tensor) -> Tensor:
        def embedded(tt: Tensor) -> Tensor:
            x = model.decode(path(a, c, tt)).float()
            return dist.embed(_crop(x) if crop else x)

        _, dx = jvp(embedded, (t,), (torch.ones_like(t),))  # forward mode: unaffected by the helper's no_grad
        return dx.pow(2).sum(1).double()

    return over_paths(model, space, sampling, n, seed, per_batch, batch_size).numpy()
